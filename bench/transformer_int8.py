#!/usr/bin/python3
"""Dynamic int8 of transformers against their float originals, in shrink and ONNX Runtime.

A BERT-style encoder (Hugging Face layout: separate query/key/value Linear layers, an
additive attention mask, post-norm, exact GELU; hidden 768, 12 heads, FFN 3072, seeded
random weights) is exported by PyTorch at opset 17 with a symbolic batch, quantized by
`shrink quantize --mode dynamic` (int8 weights, activations quantized per batch), and both
files are timed in shrink (`shrink bench`) and ONNX Runtime (tools/ort_run.js), the peers
interleaved and repeated, medians printed with the int8 speed-ups. Other float models
(e.g. the zoo's `vit`) can be given too, each quantized the same way:

  /usr/bin/python3 bench/transformer_int8.py [--layers 4] [--seq 128] [--batch 8] [--repeats 3]
  /usr/bin/python3 bench/transformer_int8.py --layers 0 --batch 64 vit.onnx
  /usr/bin/python3 bench/transformer_int8.py --layers 0 --batch 64 --mode static --smooth 0.5 vit.onnx

--mode static calibrates on the default data (Fashion-MNIST), so it suits the zoo models,
not the encoder. --per-token quantizes dynamic activations per row; --mode int4 stores the
Linear weights as 4-bit codes (weight-only, groups of 32) and shows the batch-1 case best,
where the float product is bound by reading the weights:

  /usr/bin/python3 bench/transformer_int8.py --mode int4 --seq 1 --batch 1
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from runtimes import ROOT, time_ort, time_shrink  # noqa: E402



def main():
    p = argparse.ArgumentParser()
    p.add_argument("models", nargs="*", help="more float ONNX models to quantize and time")
    p.add_argument("--layers", type=int, default=4, help="BERT-style encoder layers (0: none)")
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--mode", default="dynamic", choices=["dynamic", "static", "int4"])
    p.add_argument("--per-token", action="store_true", help="dynamic: activations quantized per token")
    p.add_argument("--smooth", help="SmoothQuant alpha, passed to shrink quantize")
    p.add_argument("--shrink", default=os.path.join(ROOT, "build", "shrink"))
    a = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="shrink-int8-")
    models = list(a.models)
    if a.layers > 0:
        bert = os.path.join(tmp, f"bert{a.layers}.onnx")
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "bert_encoder.py"), bert, "--layers",
                        str(a.layers), "--seq", str(a.seq)], check=True, capture_output=True)
        models.insert(0, bert)
    what = "int4 weight-only" if a.mode == "int4" else f"{a.mode}{' per-token' if a.per_token else ''} int8"
    print(f"{what}, sequence {a.seq}, threads {a.threads}, batch {a.batch}, medians of {a.repeats} repeats of {a.runs} runs, peers interleaved")
    print(f"{'model':22} {'shrink fp32':>12} {'shrink q':>12} {'speed-up':>9} {'ORT fp32':>9} {'ORT q':>9} "
          f"{'speed-up':>9} {'q shrink/ORT':>16}")
    for model in models:
        q = os.path.join(tmp, os.path.basename(model).replace(".onnx", f".{a.mode}.onnx"))
        flags = ["--smooth", a.smooth] if a.smooth else []
        flags += ["--per-token"] if a.per_token else []
        flags += ["--mode", "weight-only", "--bits", "4"] if a.mode == "int4" else ["--mode", a.mode]
        subprocess.run([a.shrink, "quantize", model, *flags, "--no-eval", "--no-latency", "-o", q],
                       check=True, capture_output=True)
        t = {k: [] for k in ("sf", "si", "of", "oi")}
        for _ in range(a.repeats):
            t["sf"].append(time_shrink(a.shrink, model, a.batch, a.threads, a.runs))
            t["of"].append(time_ort(model, a.batch, a.threads, a.runs))
            t["si"].append(time_shrink(a.shrink, q, a.batch, a.threads, a.runs))
            t["oi"].append(time_ort(q, a.batch, a.threads, a.runs))
        m = {k: statistics.median(v) for k, v in t.items()}
        print(f"{os.path.basename(model):22} {m['sf']:12.2f} {m['si']:12.2f} {m['sf'] / m['si']:9.2f} {m['of']:9.2f} "
              f"{m['oi']:9.2f} {m['of'] / m['oi']:9.2f} {m['si'] / m['oi']:16.2f}")
        sys.stdout.flush()


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
