#!/usr/bin/env python3
"""Data-parallel training speed: `shrink train` in 1 process and with `--nproc 2`, side by side.

For each model, one epoch of Fashion-MNIST (the package's data, or --data), 1 and 2
workers interleaved REPEATS times (rotated order: the machine's load drifts); prints the
median images/s of each, their ratio, and the gradient all-reduce time per step that the
2-worker run measured (c10d/Gloo over loopback, `comm_seconds / steps` of `train --json`)
with the effective all-reduce bandwidth it implies (ring: each rank sends and receives
2 (W-1)/W of the gradient bytes per step).

On a 2-core machine two workers share the cores one worker already used, so the figure
is the overhead of data parallelism, not a speed-up. The script then puts the measured
figures on paper for ResNet-50 on 8 machines: the all-reduce of its 25.6M gradients over
a network of --net-gbps, against its compute time per step at the training throughput
(MACs/s) measured here, with the all-reduce after the backward pass (as shrink does it).

  /usr/bin/python3 bench/dist_speed.py [--models lenet5,lenet5-caffe] [--repeats 3]
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def train(shrink, model, nproc, data, out):
    cmd = [shrink] + (["--nproc", str(nproc)] if nproc > 1 else []) + [
        "train", "--model", model, "--epochs", "1", "--batch", "128", "-o", out, "--json"]
    if data:
        cmd += ["--data", data]
    r = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(r.stdout[r.stdout.index("{"):])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shrink", default=os.path.join(ROOT, "build", "shrink"))
    p.add_argument("--models", default="lenet5,lenet5-caffe")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--data", default="")
    p.add_argument("--net-gbps", type=float, default=10.0, help="network of the machines on paper, Gbit/s")
    a = p.parse_args()
    zoo = {m["name"]: m for m in json.loads(subprocess.run([a.shrink, "zoo", "--json"], check=True,
                                                           capture_output=True, text=True).stdout)}
    print(f"shrink train, 1 epoch, --batch 128 (global); medians of {a.repeats} interleaved repeats")
    print(f"{'model':14} {'params':>9} {'1 worker img/s':>15} {'2 workers img/s':>16} {'ratio':>6}"
          f" {'allreduce ms/step':>18} {'MB/step':>8} {'eff. GB/s':>10}")
    macs_per_s, bandwidth = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for model in a.models.split(","):
            got = {1: [], 2: []}
            for r in range(a.repeats):
                for nproc in ((1, 2) if r % 2 == 0 else (2, 1)):
                    got[nproc].append(train(a.shrink, model, nproc, a.data, os.path.join(tmp, f"{model}{nproc}.onnx")))
            ips = {n: statistics.median(60000.0 / j["seconds"] if not j["history"] else
                                        j["history"][0]["images_per_second"] for j in v) for n, v in got.items()}
            comm = statistics.median(j["comm_seconds"] / max(1, j["steps"]) for j in got[2])
            params = zoo[model]["parameters"]
            mb = params * 4 / 1e6
            eff = 2 * (2 - 1) / 2 * mb / 1e3 / comm if comm > 0 else float("nan")
            macs_per_s.append(3 * zoo[model]["macs"] * ips[1])  # forward + backward ~ 3x the forward's MACs
            bandwidth.append(eff)
            print(f"{model:14} {params:9d} {ips[1]:15.0f} {ips[2]:16.0f} {ips[2] / ips[1]:6.2f}"
                  f" {1e3 * comm:18.3f} {mb:8.2f} {eff:10.2f}")
    # On paper: ResNet-50 (25.6M parameters, 4.1 GMACs per 224x224 image), 8 machines,
    # batch 32 per machine, at this machine's best measured training MAC rate.
    rate = max(macs_per_s)
    compute = 3 * 4.1e9 * 32 / rate
    grad_bytes = 25.6e6 * 4
    print(f"\nOn paper, ResNet-50 (25.6M parameters, 4.1 GMACs/image) on 8 machines like this one "
          f"({rate / 1e9:.1f} GMAC/s training), batch 32 each, all-reduce after the backward pass:")
    for what, gbytes in ((f"the all-reduce bandwidth measured here ({max(bandwidth):.2f} GB/s, loopback)", max(bandwidth)),
                         (f"a {a.net_gbps:g} Gbit/s network", a.net_gbps / 8)):
        ring = 2 * 7 / 8 * grad_bytes / (gbytes * 1e9)
        eff = compute / (compute + ring)
        print(f"  at {what}: compute {compute:.2f} s/step, ring all-reduce of {grad_bytes / 1e6:.0f} MB "
              f"{ring:.3f} s/step: {8 * eff:.2f}x of 1 machine ({100 * eff:.1f}% efficiency)")


if __name__ == "__main__":
    main()
