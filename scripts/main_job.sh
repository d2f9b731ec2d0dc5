#!/usr/bin/env bash
# The main job (for now): export a torchvision ResNet-18 (seeded random weights;
# nothing downloaded), inspect it with `shrink info`, run it with `shrink run` and
# compare with PyTorch's own output for the same input.
set -euo pipefail
cd "$(dirname "$0")/.."
SHRINK="${1:-build/shrink}"
PYTHON="${SHRINK_PYTHON:-/usr/bin/python3}"
OUT="${SHRINK_DEMO_DIR:-build/demo}"
mkdir -p "$OUT"
echo "== exporting torchvision resnet18 (random seeded weights, 2x3x96x96 input) with PyTorch"
"$PYTHON" tools/export_torchvision.py --model resnet18 --out "$OUT/resnet18"
echo "== shrink info"
"$SHRINK" info "$OUT/resnet18/model.onnx"
echo "== shrink run"
"$SHRINK" run "$OUT/resnet18/model.onnx" -i "$OUT/resnet18/input.npy" -o "$OUT/resnet18/shrink_output.npy"
"$PYTHON" - "$OUT/resnet18" <<'PY'
import sys, numpy as np
d = sys.argv[1]
ours, torch_out = np.load(d + "/shrink_output.npy"), np.load(d + "/output.npy")
print(f"shrink vs PyTorch: max abs difference {np.abs(ours - torch_out).max():.2e} "
      f"over {ours.size} outputs; top-1 agreement {(ours.argmax(1) == torch_out.argmax(1)).mean() * 100:.0f}%")
PY
