#!/usr/bin/python3
"""Latency of the same ONNX model in shrink, ONNX Runtime and PyTorch, side by side.

  bench/runtimes.py [--shrink build/shrink] [--threads N] [--runs R] [--models lenet5,resnet18]

Each model is built in PyTorch (seeded random weights), exported to ONNX with a
symbolic batch, and timed at batch 1 and 64 with the same thread count in:
  - PyTorch (the module it came from, torch.inference_mode),
  - ONNX Runtime (npm onnxruntime-node, tools/ort_run.js),
  - shrink (`shrink bench`, the executor after the inference pass pipeline).
Prints median latencies and the ratios shrink/ONNX Runtime and shrink/PyTorch.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import torch
import torch.nn as nn
import torchvision

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class LeNet5(nn.Module):
    """LeCun et al. 1998 on a 1x32x32 input."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


def build(name):
    torch.manual_seed(0)
    if name == "lenet5":
        return LeNet5().eval(), (1, 32, 32)
    if name == "resnet18":
        return torchvision.models.resnet18(weights=None, num_classes=10).eval(), (3, 32, 32)
    raise SystemExit(f"unknown model {name}")


def time_pytorch(model, shape, batch, runs):
    x = torch.randn(batch, *shape)
    with torch.inference_mode():
        for _ in range(5):
            model(x)
        ms = []
        for _ in range(runs):
            t0 = time.perf_counter()
            model(x)
            ms.append((time.perf_counter() - t0) * 1e3)
    ms.sort()
    return ms[len(ms) // 2]


def time_ort(path, batch, threads, runs):
    out = subprocess.run(["node", os.path.join(ROOT, "tools", "ort_run.js"), "bench", path, str(batch),
                          str(threads), str(runs)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)["median_ms"]


def time_shrink(binary, path, batch, threads, runs):
    out = subprocess.run([binary, "--threads", str(threads), "bench", path, "--batch", str(batch), "--runs",
                          str(runs), "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)["median_ms"]


def main():
    warnings.filterwarnings("ignore")
    p = argparse.ArgumentParser()
    p.add_argument("--shrink", default=os.path.join(ROOT, "build", "shrink"))
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--models", default="lenet5,resnet18")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(f"threads {a.threads}, median of {a.runs} runs, torch {torch.__version__}")
    print(f"{'model':10} {'batch':>5} {'PyTorch ms':>11} {'ORT ms':>9} {'shrink ms':>10} {'shrink/ORT':>11} {'shrink/PyTorch':>15}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.models.split(","):
            model, shape = build(name)
            path = os.path.join(tmp, name + ".onnx")
            torch.onnx.export(model, torch.randn(1, *shape), path, opset_version=13, input_names=["input"],
                              output_names=["output"], dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
            for batch in (1, 64):
                runs = a.runs if batch == 1 else max(5, a.runs // 3)
                pt = time_pytorch(model, shape, batch, runs)
                ort = time_ort(path, batch, a.threads, runs)
                ours = time_shrink(a.shrink, path, batch, a.threads, runs)
                print(f"{name:10} {batch:5d} {pt:11.3f} {ort:9.3f} {ours:10.3f} {ours / ort:11.2f} {ours / pt:15.2f}")
                sys.stdout.flush()


if __name__ == "__main__":
    main()
