#!/usr/bin/env bash
# Configures (once) and builds with Ninja, ccache and precompiled headers.
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
BUILD_DIR="${SHRINK_BUILD_DIR:-build}"
if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
  cmake -G Ninja -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release
fi
jobs=$(nproc)
# The torch headers need ~2 GiB per compiler: keep parallelism within memory.
ninja -C "$BUILD_DIR" -j "$jobs"
