#!/usr/bin/python3
"""Structured pruning of long chains: is graph surgery linear in the node count?

  surgery_chain.py [--shrink build/shrink] [--nodes 25000,50000,100000] [--repeat 3]

Makes a chain of 1x1 convolutions and ReLUs (8 channels, 4x4 images; half the nodes
are Conv) with onnx's helper, then times `shrink convert --passes none` (import and
export) and `shrink prune --method ln-structured --amount 0.5 --no-eval --no-latency`
(import, channel analysis, surgery, export) on it. Prints the median seconds per size
and the time per 1,000 nodes: constant per-node time is linear surgery.
"""
import argparse
import os
import statistics
import subprocess
import tempfile
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def chain(nodes, path, channels=8):
    rng = np.random.default_rng(0)
    inits, graph_nodes = [], []
    x = "x"
    for i in range(nodes // 2):
        w = numpy_helper.from_array(rng.standard_normal((channels, channels, 1, 1)).astype(np.float32) * 0.3, f"w{i}")
        b = numpy_helper.from_array(rng.standard_normal(channels).astype(np.float32) * 0.1, f"b{i}")
        inits += [w, b]
        graph_nodes.append(helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [f"c{i}"], name=f"conv{i}"))
        graph_nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"], name=f"relu{i}"))
        x = f"r{i}"
    g = helper.make_graph(graph_nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", channels, 4, 4])],
                          [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["N", channels, 4, 4])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, path)


def timed(cmd):
    t = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stdout[-2000:]}")
    return time.perf_counter() - t


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shrink", default=os.path.join(ROOT, "build", "shrink"))
    p.add_argument("--nodes", default="25000,50000,100000")
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    work = tempfile.mkdtemp(prefix="shrink-chain-")
    sizes = [int(n) for n in a.nodes.split(",")]
    for n in sizes:
        chain(n, os.path.join(work, f"chain{n}.onnx"))
    times = {(n, k): [] for n in sizes for k in ("convert", "prune")}
    for _ in range(a.repeat):  # interleaved: the machine's noise hits every size alike
        for n in sizes:
            m = os.path.join(work, f"chain{n}.onnx")
            out = os.path.join(work, "out.onnx")
            times[(n, "convert")].append(timed([a.shrink, "convert", m, "-o", out, "--passes", "none"]))
            times[(n, "prune")].append(timed([a.shrink, "prune", m, "-o", out, "--method", "ln-structured",
                                              "--amount", "0.5", "--no-eval", "--no-latency"]))
    print(f"{'nodes':>8s} {'convert s':>10s} {'prune s':>10s} {'prune s/1k nodes':>17s}")
    for n in sizes:
        c, pr = statistics.median(times[(n, "convert")]), statistics.median(times[(n, "prune")])
        print(f"{n:8d} {c:10.2f} {pr:10.2f} {1000 * pr / n:17.4f}")
    for f in os.listdir(work):
        os.remove(os.path.join(work, f))
    os.rmdir(work)


if __name__ == "__main__":
    main()
