#!/usr/bin/env bash
# README's main command: install what is missing, build, and run the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
BUILD_DIR="${SHRINK_BUILD_DIR:-build}"
exec bash scripts/main_job.sh "$BUILD_DIR/shrink"
