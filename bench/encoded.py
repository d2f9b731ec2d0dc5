#!/usr/bin/env python3
"""ONNX Runtime on compact (encoded) files against the same models written dense.

shrink writes initializers as sparse tensors or as bit-packed streams that standard ops
decode (README: "Compact initializers"); ONNX Runtime folds the decode at session
creation. For each model the script writes a dense copy (`shrink convert --passes none
--dense`), then times both in ONNX Runtime, interleaved, REPEATS times: session creation
(median of 5 creations) and run latency (median of RUNS runs), and prints the medians
and the ratios encoded / dense:

  /usr/bin/python3 bench/encoded.py l300_cb3.onnx lenet5_pruned.int8.onnx [--repeats 5]
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ort_bench(model, batch, threads, runs):
    out = subprocess.run(["node", os.path.join(ROOT, "tools", "ort_run.js"), "bench", model, str(batch),
                          str(threads), str(runs)], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("models", nargs="+")
    p.add_argument("--shrink", default=os.path.join(ROOT, "build", "shrink"))
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    print(f"ONNX Runtime, threads {a.threads}, batch {a.batch}; medians of {a.repeats} interleaved repeats")
    print(f"{'model':32} {'bytes':>9} {'dense':>9} {'create ms':>10} {'dense':>7} {'ratio':>6}"
          f" {'run ms':>8} {'dense':>7} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for model in a.models:
            dense = os.path.join(tmp, os.path.basename(model) + ".dense.onnx")
            subprocess.run([a.shrink, "convert", model, "-o", dense, "--passes", "none", "--dense"], check=True,
                           capture_output=True)
            got = {"enc": [], "dense": []}
            for _ in range(a.repeats):
                for key, path in (("enc", model), ("dense", dense)):
                    got[key].append(ort_bench(path, a.batch, a.threads, a.runs))
            med = {k: (statistics.median(r["create_ms"] for r in v), statistics.median(r["median_ms"] for r in v))
                   for k, v in got.items()}
            print(f"{os.path.basename(model)[:32]:32} {os.path.getsize(model):9d} {os.path.getsize(dense):9d}"
                  f" {med['enc'][0]:10.2f} {med['dense'][0]:7.2f} {med['enc'][0] / med['dense'][0]:6.2f}"
                  f" {med['enc'][1]:8.3f} {med['dense'][1]:7.3f} {med['enc'][1] / med['dense'][1]:6.2f}")


if __name__ == "__main__":
    main()
