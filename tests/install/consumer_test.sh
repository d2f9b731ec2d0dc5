#!/usr/bin/env bash
# Installs the finished build into a fresh prefix (`cmake --install`), checks the
# layout README promises, then configures, builds and runs tests/install/consumer
# -- a project outside the tree using find_package(shrink) and shrink::shrink --
# on one of ONNX's backend test cases, compared with the stored outputs.
# Usage: consumer_test.sh BUILD_DIR   (SHRINK_ONNX_TESTDATA overrides the test data)
set -euo pipefail
build_dir=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
testdata="${SHRINK_ONNX_TESTDATA:-/usr/share/libonnx-testdata/data}"
work=$(mktemp -d "${TMPDIR:-/tmp}/shrink-consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"

cmake --install "$build_dir" --prefix "$prefix" >"$work/install.log"
for f in bin/shrink lib/libshrink.a include/shrink/exec/session.h include/shrink/onnx/import.h \
         include/shrink/core/version.h lib/cmake/shrink/shrinkConfig.cmake \
         lib/cmake/shrink/shrinkConfigVersion.cmake lib/cmake/shrink/shrinkTargets.cmake; do
  [[ -f "$prefix/$f" ]] || { echo "consumer_test: $prefix/$f was not installed"; exit 1; }
done
# Only the library's headers: not the command line's, not the precompiled header.
if [[ -e "$prefix/include/shrink/cli" || -e "$prefix/include/shrink/pch.h" ]]; then
  echo "consumer_test: private headers were installed"; exit 1
fi
# The installed config must not point back into the build or source tree.
if grep -rlE "$build_dir|$(dirname "$(dirname "$here")")/src" "$prefix/lib/cmake/shrink"; then
  echo "consumer_test: the installed CMake package names build-tree paths"; exit 1
fi
"$prefix/bin/shrink" --version

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
cmake -G Ninja -S "$here/consumer" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$prefix" "${launcher[@]}" >"$work/configure.log" ||
  { cat "$work/configure.log"; exit 1; }
ninja -C "$work/build" >"$work/build.log" || { cat "$work/build.log"; exit 1; }
"$work/build/consumer" "$testdata/pytorch-operator/test_operator_basic"
"$work/build/consumer" "$testdata/pytorch-converted/test_Conv2d"
