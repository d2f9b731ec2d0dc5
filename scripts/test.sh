#!/usr/bin/env bash
# README's test command: install what is missing, build, run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
BUILD_DIR="${SHRINK_BUILD_DIR:-build}"
# The conformance summary first (ctest shows test output only on failure).
"$BUILD_DIR/tests/shrink_conformance" | tail -n 1
cd "$BUILD_DIR"
ctest --output-on-failure -j "$(nproc)" "$@"
