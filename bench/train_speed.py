#!/usr/bin/python3
"""Training throughput of shrink vs PyTorch on Fashion-MNIST, side by side.

  bench/train_speed.py [--shrink build/shrink] [--threads N] [--batch 128] [--models lenet5,mlp] [--epochs 3]

For each model, epochs of SGD (momentum 0.9, weight decay 5e-4, batch 128) over the
60,000 training images: PyTorch with the same architecture, the data already a
normalised float tensor in memory, torch.set_num_threads(N); shrink with
`shrink --threads N train --epochs E --json` (its loader decodes and normalises
batches on a background thread). Each side reports its fastest epoch (the machine is
shared and noisy; the first epoch also pays warm-up).

PyTorch runs twice, each in its own process: as installed, and with glibc's malloc told
what shrink tells it at start-up (never mmap a block, never trim the heap; see
src/shrink/core/allocator.h), through GLIBC_TUNABLES. The second column shows how much
of shrink's lead is its allocator setting. Prints images/s and the ratios.
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(data_dir):
    img = np.frombuffer(gzip.open(os.path.join(data_dir, "train-images-idx3-ubyte.gz")).read()[16:], np.uint8)
    lab = np.frombuffer(gzip.open(os.path.join(data_dir, "train-labels-idx1-ubyte.gz")).read()[8:], np.uint8)
    x = torch.from_numpy(img.reshape(-1, 1, 28, 28).astype(np.float32) / 255.0)
    x = (x - x.mean()) / x.std()
    return x, torch.from_numpy(lab.astype(np.int64))


def model(name):
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    if name == "lenet300":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, 10))
    if name == "lenet5":
        return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                             nn.Linear(84, 10))
    raise SystemExit(f"unknown model {name}")


# What shrink's tune_allocator() sets with mallopt, as glibc tunables for another process.
TUNED_MALLOC = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647"


def pytorch_images_per_s(name, x, y, batch, epochs):
    torch.manual_seed(0)
    m = model(name).train()
    opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    best = 0.0
    for _ in range(epochs):
        perm = torch.randperm(x.shape[0])
        t0 = time.perf_counter()
        for i in range(0, x.shape[0], batch):
            idx = perm[i:i + batch]
            loss = loss_fn(m(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        best = max(best, x.shape[0] / (time.perf_counter() - t0))
    return best


def pytorch_in_process(a, name, tunables):
    """Runs pytorch_images_per_s in a fresh interpreter (glibc reads its tunables at start-up)."""
    env = dict(os.environ)
    if tunables:
        env["GLIBC_TUNABLES"] = tunables
    else:
        env.pop("GLIBC_TUNABLES", None)
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", name, "--threads", str(a.threads),
                          "--batch", str(a.batch), "--epochs", str(a.epochs), "--data", a.data],
                         check=True, capture_output=True, text=True, env=env)
    return float(out.stdout.strip())


def shrink_images_per_s(binary, name, threads, batch, epochs, data_dir):
    out_path = os.path.join(tempfile.mkdtemp(), name + ".onnx")
    out = subprocess.run([binary, "--threads", str(threads), "train", "--model", name, "--epochs", str(epochs), "--batch",
                          str(batch), "--lr", "0.05", "--data", data_dir, "--json", "-o", out_path], check=True, capture_output=True, text=True)
    return max(h["images_per_second"] for h in json.loads(out.stdout)["history"])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shrink", default=os.path.join(ROOT, "build", "shrink"))
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--models", default="mlp,lenet5")
    p.add_argument("--data", default=os.environ.get("SHRINK_DATA", "/usr/share/datasets/fashion-mnist"))
    p.add_argument("--epochs", type=int, default=3, help="epochs per side; the fastest is reported")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.worker:
        x, y = load(a.data)
        print(pytorch_images_per_s(a.worker, x, y, a.batch, a.epochs))
        return
    print(f"threads {a.threads}, batch {a.batch}, fastest of {a.epochs} epochs of 60000 images, torch {torch.__version__}")
    print(f"{'model':10} {'PyTorch':>9} {'PyTorch+malloc':>15} {'shrink':>9} {'shrink/PyTorch':>15} {'shrink/PyTorch+malloc':>22}")
    for name in a.models.split(","):
        pt = pytorch_in_process(a, name, None)
        pt_tuned = pytorch_in_process(a, name, TUNED_MALLOC)
        ours = shrink_images_per_s(a.shrink, name, a.threads, a.batch, a.epochs, a.data)
        print(f"{name:10} {pt:9.0f} {pt_tuned:15.0f} {ours:9.0f} {ours / pt:15.2f} {ours / pt_tuned:22.2f}")


if __name__ == "__main__":
    main()
