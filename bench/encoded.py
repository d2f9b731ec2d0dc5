#!/usr/bin/env python3
"""ONNX Runtime on compact (encoded) files against the same models written sparse and dense.

shrink writes initializers as sparse tensors or as bit-packed streams that standard ops
decode (README: "Compact initializers"); ONNX Runtime folds the decode at session
creation. For each model the script writes a `--storage sparse` copy (dense or sparse
initializers, no decode nodes) and a dense one (`shrink convert --passes none`), then
times the three in ONNX Runtime, interleaved, REPEATS times: session creation (median of
5 creations) and run latency (median of RUNS runs), and prints bytes, the medians and
the ratios to dense:

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
    print(f"{'model':28} {'storage':8} {'bytes':>9} {'create ms':>10} {'/dense':>7} {'run ms':>8} {'/dense':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for model in a.models:
            files = {"compact": model}
            for storage in ("sparse", "dense"):
                files[storage] = os.path.join(tmp, f"{os.path.basename(model)}.{storage}.onnx")
                subprocess.run([a.shrink, "convert", model, "-o", files[storage], "--passes", "none", "--storage",
                                storage], check=True, capture_output=True)
            got = {k: [] for k in files}
            for r in range(a.repeats):
                order = list(files.items())
                order = order[r % 3:] + order[:r % 3]  # rotated: the machine's load drifts
                for key, path in order:
                    got[key].append(ort_bench(path, a.batch, a.threads, a.runs))
            med = {k: (statistics.median(r["create_ms"] for r in v), statistics.median(r["median_ms"] for r in v))
                   for k, v in got.items()}
            for key, path in files.items():
                print(f"{os.path.basename(model)[:28]:28} {key:8} {os.path.getsize(path):9d}"
                      f" {med[key][0]:10.2f} {med[key][0] / med['dense'][0]:7.2f}"
                      f" {med[key][1]:8.3f} {med[key][1] / med['dense'][1]:7.2f}")


if __name__ == "__main__":
    main()
