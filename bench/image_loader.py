#!/usr/bin/python3
"""Image-folder loading: shrink's loader against torchvision's ImageFolder + DataLoader.

  bench/image_loader.py [--shrink build/shrink] [--images 1000] [--workers 2] [--repeats 5]

Writes --images JPEG files (PIL, quality 90, sides 300-500 pixels, 10 classes) in the
ImageFolder layout, then loads every image as ImageNet evaluation does: decode,
Resize(256) (shorter side, bilinear, antialiased), CenterCrop(224), to float,
Normalize, in batches of 64 on --workers background workers:
  shrink       `shrink data --data DIR --resize 256 --crop 224 --mean ... --std ...
               --workers W --json` (threads; libjpeg-turbo, ATen's resize)
  torchvision  ImageFolder + DataLoader(num_workers=W) with T.Resize, T.CenterCrop,
               T.ToTensor, T.Normalize (processes; PIL with libjpeg-turbo)
Each side's time covers its workers' start-up and the whole pass. The two run
interleaved, --repeats times; medians of images/s and their ratio are printed.

Then whether the loader keeps a training step fed: `shrink train` of the zoo's
LeNet-5 built for 3x224x224 (a light step, so the hardest case for the loader, which
shares the two cores with it; batch 32) for one epoch over 224x224 images, once
from the JPEG folder (decoded in the loader's threads while the step runs) and once
from the same images already decoded in memory (.npz): the training images/s of the
two, their ratio (1.0: the loader costs the step nothing), and the share of the
training time the step spent waiting for the loader's next batch (not fed).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEAN, STD = "0.485,0.456,0.406", "0.229,0.224,0.225"


def torchvision_pass(folder, workers):
    import torch
    import torchvision.transforms as T
    from torchvision.datasets import ImageFolder
    tf = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                    T.Normalize([float(v) for v in MEAN.split(",")], [float(v) for v in STD.split(",")])])
    start = time.perf_counter()
    loader = torch.utils.data.DataLoader(ImageFolder(folder, transform=tf), batch_size=64, num_workers=workers)
    n = 0
    for x, _ in loader:
        n += x.shape[0]
    return n / (time.perf_counter() - start)


def shrink_pass(shrink, folder, workers):
    out = subprocess.run([shrink, "data", "--data", folder, "--resize", "256", "--crop", "224", "--mean", MEAN,
                          "--std", STD, "--workers", str(workers), "--batch", "64", "--json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["images_per_second"]


def train_rate(shrink, data, epochs=1):
    out = subprocess.run([shrink, "train", "-m", "lenet5", "--data", data, "--epochs",
                          str(epochs), "--batch", "32", "--no-keep-best", "--json", "-o",
                          os.path.join(os.path.dirname(data), "m.onnx")] +
                         (["--resize", "256", "--crop", "224"] if os.path.isdir(data) else []),
                         check=True, capture_output=True, text=True).stdout
    j = json.loads(out)
    return max(e["images_per_second"] for e in j["history"]), j["data_wait_seconds"] / j["seconds"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shrink", default=os.path.join(ROOT, "build", "shrink"))
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--train-images", type=int, default=512)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "images")
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "make_image_data.py"), "jpegs", folder, "--n",
                        str(a.images), "--classes", "10", "--min-side", "300", "--max-side", "500"], check=True)
        ours, theirs = [], []
        for r in range(a.repeats):  # interleaved: the machine is shared and noisy
            ours.append(shrink_pass(a.shrink, folder, a.workers))
            theirs.append(torchvision_pass(folder, a.workers))
            print(f"repeat {r + 1}: shrink {ours[-1]:.0f} images/s, torchvision {theirs[-1]:.0f} images/s", flush=True)
        mo, mt = statistics.median(ours), statistics.median(theirs)
        print(f"\n{a.images} JPEGs, Resize(256) CenterCrop(224) Normalize, batch 64, {a.workers} workers, "
              f"median of {a.repeats}:")
        print(f"  shrink data          {mo:8.0f} images/s")
        print(f"  torchvision          {mt:8.0f} images/s")
        print(f"  ratio                {mo / mt:8.2f}x")

        # Training fed from the folder vs from memory.
        train_folder = os.path.join(tmp, "train")
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "make_image_data.py"), "jpegs", train_folder, "--n",
                        str(a.train_images), "--classes", "10", "--min-side", "300", "--max-side", "500",
                        "--seed", "5"], check=True)
        batch = os.path.join(tmp, "decoded.npy")
        subprocess.run([a.shrink, "data", "--data", train_folder, "--resize", "256", "--crop", "224", "--batch",
                        str(a.train_images), "--mean", "0,0,0", "--std", "1,1,1", "--save-batch", batch], check=True,
                       capture_output=True)
        x = np.clip(np.rint(np.load(batch) * 255), 0, 255).astype(np.uint8)
        labels = []
        for c, name in enumerate(sorted(os.listdir(train_folder))):
            labels += [c] * len(os.listdir(os.path.join(train_folder, name)))
        npz = os.path.join(tmp, "decoded.npz")
        np.savez(npz, x=x, y=np.array(labels, np.int64))
        folder_rates, memory_rates, waits = [], [], []
        for r in range(3):
            rate, wait = train_rate(a.shrink, train_folder)
            folder_rates.append(rate)
            waits.append(wait)
            memory_rates.append(train_rate(a.shrink, npz)[0])
        f, m = statistics.median(folder_rates), statistics.median(memory_rates)
        print(f"\ntraining LeNet-5 at 3x224x224, batch 32, {a.train_images} images, median of 3:")
        print(f"  from the JPEG folder {f:8.1f} images/s (decoded in the loader's threads during the steps)")
        print(f"  from memory (.npz)   {m:8.1f} images/s")
        print(f"  ratio                {f / m:8.2f} (1.0: the loader costs the step nothing; it shares the cores)")
        print(f"  waiting for batches  {100 * statistics.median(waits):7.1f}% of the training time (from the folder)")


if __name__ == "__main__":
    main()
