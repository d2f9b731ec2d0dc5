#!/usr/bin/env bash
# Runs one libFuzzer target for a while: scripts/fuzz.sh TARGET SECONDS [libFuzzer flags...]
#   TARGET: npy | npz | idx | cifar | image | onnx   (tests/fuzz/fuzz_TARGET.cpp)
# Builds shrink with clang, libFuzzer's coverage, AddressSanitizer and UBSan in
# build-fuzz/ (once; later runs rebuild only what changed), then fuzzes with the
# seed corpus (tests/fuzz/corpus/TARGET, or ONNX's backend test models for onnx)
# and a working corpus in build-fuzz/corpus/TARGET, capped at 2 GiB of memory and
# 10 s per input. A crashing input is written to tests/fuzz/crashes/TARGET/: commit
# it with the fix, and the suite's Fuzz.Replay.TARGET replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer flags...]}
seconds=${2:?usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer flags...]}
shift 2
[[ -f tests/fuzz/fuzz_$target.cpp ]] || { echo "fuzz: no target '$target' (expected npy, npz, idx, cifar, image or onnx)" >&2; exit 2; }

# clang and its fuzzer runtime (Debian's), installed when missing.
missing=()
for p in clang-14 libclang-rt-14-dev; do
  [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true) == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO=sudo
  $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

build=${SHRINK_FUZZ_BUILD_DIR:-build-fuzz}
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
if [[ ! -f "$build/build.ninja" ]]; then
  flags="-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize=vptr"
  CC=clang-14 CXX=clang++-14 cmake -G Ninja -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSHRINK_BUILD_TESTS=OFF -DSHRINK_FUZZ=ON -DCMAKE_CXX_FLAGS="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined"
fi
ninja -C "$build" "fuzz_$target"

seeds=(tests/fuzz/corpus/"$target")
if [[ $target == onnx ]]; then
  data=${SHRINK_ONNX_TESTDATA:-/usr/share/libonnx-testdata/data}
  seeds=()
  for f in "$data"/node/*/model.onnx "$data"/pytorch-converted/*/model.onnx "$data"/pytorch-operator/*/model.onnx; do
    seeds+=("$f")
  done
  mkdir -p "$build/seeds/onnx"
  # libFuzzer takes directories: link each seed model in under a unique name.
  for f in "${seeds[@]}"; do ln -sf "$(realpath "$f")" "$build/seeds/onnx/$(basename "$(dirname "$f")").onnx"; done
  seeds=("$build/seeds/onnx")
fi
mkdir -p "$build/corpus/$target" "tests/fuzz/crashes/$target"
# ASan's leak checker at exit, OpenMP/LibTorch's one-time allocations suppressed by detect_leaks per input.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
exec "$build/fuzz/fuzz_$target" -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 \
  -print_final_stats=1 -artifact_prefix="tests/fuzz/crashes/$target/" "$@" \
  "$build/corpus/$target" "${seeds[@]}"
