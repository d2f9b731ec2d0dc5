#!/usr/bin/python3
"""Training throughput of shrink vs PyTorch on Fashion-MNIST, side by side.

  bench/train_speed.py [--shrink build/shrink] [--threads N] [--batch 128] [--models lenet5,mlp]

For each model, one epoch of SGD (momentum 0.9, weight decay 5e-4, batch 128) over
the 60,000 training images: PyTorch with the same architecture, the data already a
normalised float tensor in memory, torch.set_num_threads(N); shrink with
`shrink --threads N train --epochs 1 --json` (its loader decodes and normalises
batches on a background thread). Prints images/s of both and the ratio.
"""
import argparse
import gzip
import json
import os
import subprocess
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


def pytorch_images_per_s(name, x, y, batch):
    torch.manual_seed(0)
    m = model(name).train()
    opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    perm = torch.randperm(x.shape[0])
    t0 = time.perf_counter()
    for i in range(0, x.shape[0], batch):
        idx = perm[i:i + batch]
        loss = loss_fn(m(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return x.shape[0] / (time.perf_counter() - t0)


def shrink_images_per_s(binary, name, threads, batch, data_dir):
    out_path = os.path.join(tempfile.mkdtemp(), name + ".onnx")
    out = subprocess.run([binary, "--threads", str(threads), "train", "--model", name, "--epochs", "1", "--batch",
                          str(batch), "--lr", "0.05", "--data", data_dir, "--json", "-o", out_path], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)["history"][0]["images_per_second"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shrink", default=os.path.join(ROOT, "build", "shrink"))
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--models", default="mlp,lenet5")
    p.add_argument("--data", default=os.environ.get("SHRINK_DATA", "/usr/share/datasets/fashion-mnist"))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    x, y = load(a.data)
    print(f"threads {a.threads}, batch {a.batch}, one epoch of 60000 images, torch {torch.__version__}")
    print(f"{'model':10} {'PyTorch img/s':>14} {'shrink img/s':>13} {'shrink/PyTorch':>15}")
    for name in a.models.split(","):
        pt = pytorch_images_per_s(name, x, y, a.batch)
        ours = shrink_images_per_s(a.shrink, name, a.threads, a.batch, a.data)
        print(f"{name:10} {pt:14.0f} {ours:13.0f} {ours / pt:15.2f}")


if __name__ == "__main__":
    main()
