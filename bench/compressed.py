#!/usr/bin/env python3
"""Latency of compressed models against their originals, in shrink and in ONNX Runtime.

Fewer MACs do not always mean less time (a factorized layer is several smaller kernels),
so every compressed model is timed beside its original in both runtimes, same threads,
same batch, and the script prints the speed-up in each runtime and shrink's time
relative to ONNX Runtime's:

  /usr/bin/python3 bench/compressed.py resnet20.onnx:resnet20_tucker.onnx [A.onnx:B.onnx ...]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from runtimes import ROOT, time_ort, time_shrink  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("pairs", nargs="+", help="ORIGINAL.onnx:COMPRESSED.onnx")
    p.add_argument("--shrink", default=os.path.join(ROOT, "build", "shrink"))
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--runs", type=int, default=30)
    a = p.parse_args()
    print(f"threads {a.threads}, batch {a.batch}, median of {a.runs} runs")
    print(f"{'model':28} {'shrink ms':>10} {'ORT ms':>9} {'shrink/ORT':>11} {'speed-up shrink':>16} {'speed-up ORT':>13}")
    for pair in a.pairs:
        original, compressed = pair.split(":")
        base_s = time_shrink(a.shrink, original, a.batch, a.threads, a.runs)
        base_o = time_ort(original, a.batch, a.threads, a.runs)
        print(f"{os.path.basename(original):28} {base_s:10.3f} {base_o:9.3f} {base_s / base_o:11.2f}")
        s = time_shrink(a.shrink, compressed, a.batch, a.threads, a.runs)
        o = time_ort(compressed, a.batch, a.threads, a.runs)
        print(f"{os.path.basename(compressed):28} {s:10.3f} {o:9.3f} {s / o:11.2f} {base_s / s:16.2f} {base_o / o:13.2f}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
