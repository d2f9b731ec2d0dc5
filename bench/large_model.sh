#!/usr/bin/env bash
# A network past protobuf's 2 GiB limit, as PyTorch exports it (external data, one file
# per tensor): torchvision's ViT-H/14 (632 M parameters, 2.5 GB) at 28x28, seeded, its
# zero-initialised classifier randomised. shrink runs it against PyTorch, `convert`
# writes it back (external data by itself, OUT.data), ONNX Runtime runs that; time and
# peak memory of each step.
#   bash bench/large_model.sh [WORK_DIR]      (about 3 minutes and 6 GB here)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SHRINK="${SHRINK:-$ROOT/build/shrink}"
WORK="${1:-$(mktemp -d)}"
mkdir -p "$WORK/in" "$WORK/conv"
cd "$WORK"
/usr/bin/time -f "pytorch export: %e s, peak %M KB" /usr/bin/python3 - <<'PY' 2>&1 | grep -v -i warn
import warnings; warnings.filterwarnings("ignore")
import torch, torchvision, numpy as np
torch.manual_seed(0)
m = torchvision.models.vit_h_14(image_size=28).eval()
with torch.no_grad():
    m.heads.head.weight.normal_(0, 0.02)
    m.heads.head.bias.uniform_(-0.1, 0.1)
    x = torch.randn(2, 3, 28, 28)
    y = m(x)
np.save("x.npy", x.numpy()); np.save("y.npy", y.numpy())
print("parameters", sum(p.numel() for p in m.parameters()))
torch.onnx.export(m, x, "in/model.onnx", opset_version=13, input_names=["x"], output_names=["y"],
                  dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
PY
echo "pytorch wrote model.onnx ($(stat -c %s in/model.onnx) bytes) and $(( $(ls in | wc -l) - 1 )) tensor files, $(du -sb in | cut -f1) bytes in all"
/usr/bin/time -f "shrink run: %e s, peak %M KB" "$SHRINK" run in/model.onnx -i x.npy -o y_shrink.npy | tail -1
/usr/bin/time -f "shrink convert: %e s, peak %M KB" "$SHRINK" convert in/model.onnx -o conv/model.onnx | tail -1
ls -l conv
node "$ROOT/tools/ort_run.js" run conv/model.onnx conv x.npy
/usr/bin/python3 -c "
import numpy as np
y = np.load('y.npy'); a = np.load('y_shrink.npy'); b = np.load('conv/output_0.npy')
print(f'output scale {np.abs(y).max():.3g}; max |shrink - PyTorch| {np.abs(a - y).max():.3g}; '
      f'max |ONNX Runtime on the converted file - PyTorch| {np.abs(b - y).max():.3g}')"
"$SHRINK" info conv/model.onnx | tail -1
