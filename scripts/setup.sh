#!/usr/bin/env bash
# Installs what shrink needs, idempotently: Debian packages (only those missing,
# so a machine that has everything is done in seconds) and the npm package
# onnxruntime-node (the ONNX Runtime peer; its CPU library ships inside it).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build ccache git
  libtorch-dev libopenblas0-openmp libdnnl-dev
  # c10d's ProcessGroupGloo.hpp includes Gloo's headers, which libtorch-dev does not pull in
  libgloo-dev
  libonnx-dev libprotobuf-dev protobuf-compiler
  libcli11-dev nlohmann-json3-dev libyaml-cpp-dev libgtest-dev libgmock-dev libbenchmark-dev
  dataset-fashion-mnist libonnx-testdata
  python3-torch python3-torchvision python3-onnx python3-numpy
  zlib1g-dev libjpeg62-turbo-dev libpng-dev libzip-dev dpkg-dev file
  # libzip-dev's CMake config fails unless its three tools are present (Debian 12's
  # libzip-targets.cmake checks /usr/bin/zipcmp, zipmerge, ziptool)
  zipcmp zipmerge ziptool
  # headless Chromium: the test that renders shrink compress's report.html
  chromium
)
# The list, for tests/install/check_build_inputs.py (Node.js and npm included).
if [[ ${1:-} == --print-packages ]]; then
  printf '%s\n' "${PACKAGES[@]}" nodejs npm
  exit 0
fi
# Node.js may come from elsewhere (its own npm included); take Debian's only if absent.
command -v node >/dev/null || PACKAGES+=(nodejs)
command -v npm >/dev/null || PACKAGES+=(npm)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [[ ! -f tools/node_modules/onnxruntime-node/package.json ]]; then
  echo "setup: installing onnxruntime-node (npm)"
  (cd tools && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund --loglevel=error)
fi
echo "setup: all dependencies present"
