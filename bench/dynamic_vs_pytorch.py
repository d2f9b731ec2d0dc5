#!/usr/bin/env python3
"""shrink's dynamic int8 quantization against PyTorch's quantize_dynamic, same weights.

Quantizes a float MLP (Gemm layers, e.g. `shrink train --model mlp`) with
`shrink quantize --mode dynamic`, runs it in shrink (int8 kernels) on the Fashion-MNIST test
set, runs torch.ao.quantization.quantize_dynamic of the same weights (/usr/bin/python3,
engine onednn), and prints both accuracies and how often their argmax agree:

  /usr/bin/python3 bench/dynamic_vs_pytorch.py runs/mlp.onnx [--per-channel]
"""
import argparse
import gzip
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import torch
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from runtimes import ROOT  # noqa: E402


def test_set(data_dir, meta):
    x = np.frombuffer(gzip.open(os.path.join(data_dir, "t10k-images-idx3-ubyte.gz")).read()[16:], np.uint8)
    y = np.frombuffer(gzip.open(os.path.join(data_dir, "t10k-labels-idx1-ubyte.gz")).read()[8:], np.uint8)
    x = x.reshape(-1, 1, 28, 28).astype(np.float32) / 255.0
    mean = float(meta.get("shrink.input_mean", "0").split(",")[0])
    std = float(meta.get("shrink.input_std", "1").split(",")[0])
    return (x - mean) / std, y.astype(np.int64)


def pytorch_mlp(model):
    w = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in model.graph.initializer}
    gemms = [n for n in model.graph.node if n.op_type == "Gemm"]
    layers = []
    for i, n in enumerate(gemms):
        W, b = w[n.input[1]], w[n.input[2]]
        if not any(a.name == "transB" and a.i == 1 for a in n.attribute):
            W = W.t()
        lin = torch.nn.Linear(W.shape[1], W.shape[0])
        lin.weight.data, lin.bias.data = W.contiguous(), b
        layers += [lin] + ([torch.nn.ReLU()] if i + 1 < len(gemms) else [])
    return torch.nn.Sequential(torch.nn.Flatten(), *layers).eval()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model", help="float MLP (ONNX)")
    p.add_argument("--shrink", default=os.path.join(ROOT, "build", "shrink"))
    p.add_argument("--data", default=os.environ.get("SHRINK_DATA", "/usr/share/datasets/fashion-mnist"))
    p.add_argument("--per-channel", action="store_true", help="shrink: one weight scale per output (PyTorch: per tensor)")
    a = p.parse_args()
    model = onnx.load(a.model)
    meta = {m.key: m.value for m in model.metadata_props}
    x, y = test_set(a.data, meta)
    tmp = tempfile.mkdtemp(prefix="shrink-dyn-")
    q = os.path.join(tmp, "dynamic.onnx")
    subprocess.run([a.shrink, "quantize", a.model, "-o", q, "--mode", "dynamic", "--no-eval", "--json"] +
                   ([] if a.per_channel else ["--per-tensor"]), check=True, stdout=subprocess.DEVNULL)
    np.save(os.path.join(tmp, "x.npy"), x)
    subprocess.run([a.shrink, "run", q, "-i", os.path.join(tmp, "x.npy"), "-o", os.path.join(tmp, "y.npy")], check=True,
                   stdout=subprocess.DEVNULL)
    ours = np.load(os.path.join(tmp, "y.npy")).argmax(1)
    torch.backends.quantized.engine = "onednn"
    net = pytorch_mlp(model)
    with torch.no_grad():
        fp32 = net(torch.from_numpy(x)).argmax(1).numpy()
        theirs = torch.ao.quantization.quantize_dynamic(net, {torch.nn.Linear}, dtype=torch.qint8)(
            torch.from_numpy(x)).argmax(1).numpy()
    print(f"test images {len(y)}: accuracy fp32 {100 * (fp32 == y).mean():.2f}%, shrink dynamic int8 "
          f"{100 * (ours == y).mean():.2f}%, PyTorch quantize_dynamic {100 * (theirs == y).mean():.2f}%")
    print(f"same argmax as PyTorch quantize_dynamic: {100 * (ours == theirs).mean():.2f}% "
          f"(shrink vs its fp32: {100 * (ours == fp32).mean():.2f}%)")


if __name__ == "__main__":
    main()
