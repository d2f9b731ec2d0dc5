#!/usr/bin/python3
"""Latency of the same ONNX model in shrink, ONNX Runtime and PyTorch, side by side.

  bench/runtimes.py [--shrink build/shrink] [--threads N] [--runs R] [--models lenet5,resnet18]
  bench/runtimes.py --imagenet [--batches 1,8] [--repeats 3] [--no-pytorch]
      (ResNet-18, ResNet-50, MobileNetV2, EfficientNet-B0 at 3x224x224, 1000 classes)

Each model is built in PyTorch (seeded random weights), exported to ONNX with a
symbolic batch, and timed with the same thread count in:
  - PyTorch (the module it came from, torch.inference_mode),
  - ONNX Runtime (npm onnxruntime-node, tools/ort_run.js),
  - shrink (`shrink bench`, the executor after the inference pass pipeline) on each of its
    backends: onednn (convolutions fused with their activations and residual Adds, on
    channels-last activations) and aten (one node at a time).
The peers are interleaved and the whole set repeated; medians are printed with the ratios
shrink/ONNX Runtime and their geometric mean over the cases.
"""
import argparse
import json
import math
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


IMAGENET = {"resnet18_224": "resnet18", "resnet50_224": "resnet50", "mobilenet_v2_224": "mobilenet_v2",
            "efficientnet_b0_224": "efficientnet_b0"}


def build(name):
    torch.manual_seed(0)
    if name == "lenet5":
        return LeNet5().eval(), (1, 32, 32)
    if name == "resnet18":
        return torchvision.models.resnet18(weights=None, num_classes=10).eval(), (3, 32, 32)
    if name in IMAGENET:
        model = getattr(torchvision.models, IMAGENET[name])(weights=None).eval()
        with torch.no_grad():  # BatchNorm statistics of a trained network, not the identity
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.1, 0.1)
                    m.running_var.uniform_(0.5, 1.5)
        return model, (3, 224, 224)
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


def time_shrink(binary, path, batch, threads, runs, backend=None):
    extra = ["--backend", backend] if backend else []
    out = subprocess.run([binary, "--threads", str(threads), *extra, "bench", path, "--batch", str(batch), "--runs",
                          str(runs), "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)["median_ms"]


def median(v):
    v = sorted(v)
    return v[len(v) // 2] if len(v) % 2 else 0.5 * (v[len(v) // 2 - 1] + v[len(v) // 2])


def main():
    warnings.filterwarnings("ignore")
    p = argparse.ArgumentParser()
    p.add_argument("--shrink", default=os.path.join(ROOT, "build", "shrink"))
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--models", default="lenet5,resnet18")
    p.add_argument("--imagenet", action="store_true", help="the ImageNet-size set (overrides --models)")
    p.add_argument("--batches", default="1,64")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--no-pytorch", action="store_true")
    a = p.parse_args()
    models = list(IMAGENET) if a.imagenet else a.models.split(",")
    batches = [int(b) for b in (a.batches if not a.imagenet or a.batches != "1,64" else "1,8").split(",")]
    torch.set_num_threads(a.threads)
    print(f"threads {a.threads}, medians of {a.repeats} repeats of {a.runs} runs (batch > 1: a third as many), peers "
          f"interleaved, torch {torch.__version__}")
    print(f"{'model':20} {'batch':>5} {'PyTorch ms':>11} {'ORT ms':>9} {'shrink ms':>10} {'aten ms':>9} "
          f"{'shrink/ORT':>11} {'aten/ORT':>9} {'shrink/PyTorch':>15}")
    ratios, aten_ratios = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name in models:
            model, shape = build(name)
            path = os.path.join(tmp, name + ".onnx")
            torch.onnx.export(model, torch.randn(1, *shape), path, opset_version=13, input_names=["input"],
                              output_names=["output"], dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
            for batch in batches:
                runs = a.runs if batch == 1 else max(5, a.runs // 3)
                t = {k: [] for k in ("pt", "ort", "dnnl", "aten")}
                for _ in range(a.repeats):
                    if not a.no_pytorch:
                        t["pt"].append(time_pytorch(model, shape, batch, runs))
                    t["ort"].append(time_ort(path, batch, a.threads, runs))
                    t["dnnl"].append(time_shrink(a.shrink, path, batch, a.threads, runs, "onednn"))
                    t["aten"].append(time_shrink(a.shrink, path, batch, a.threads, runs, "aten"))
                m = {k: median(v) if v else float("nan") for k, v in t.items()}
                ratios.append(m["dnnl"] / m["ort"])
                aten_ratios.append(m["aten"] / m["ort"])
                print(f"{name:20} {batch:5d} {m['pt']:11.3f} {m['ort']:9.3f} {m['dnnl']:10.3f} {m['aten']:9.3f} "
                      f"{m['dnnl'] / m['ort']:11.2f} {m['aten'] / m['ort']:9.2f} {m['dnnl'] / m['pt']:15.2f}")
                sys.stdout.flush()
    geo = lambda r: math.exp(sum(math.log(x) for x in r) / len(r))
    print(f"geometric mean shrink/ONNX Runtime over {len(ratios)} cases: onednn {geo(ratios):.2f}, aten "
          f"{geo(aten_ratios):.2f}; largest (onednn) {max(ratios):.2f}")


if __name__ == "__main__":
    main()
