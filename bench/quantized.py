#!/usr/bin/env python3
"""int8 against fp32, in shrink and in ONNX Runtime, on the same files.

For each float model it quantizes with `shrink quantize` (static, per-channel, calibrated on
Fashion-MNIST; and dynamic for MLPs), then times the float and the int8 file in both
runtimes, same threads, same batch, and prints the int8 speed-up in each runtime and
shrink's time relative to ONNX Runtime's (which fuses the same QDQ file into its int8
kernels). With --mlp it first builds, with PyTorch, an MLP 784-1024-1024-10 (random
weights; speed does not depend on them):

  /usr/bin/python3 bench/quantized.py runs/resnet20_6ep.onnx --mlp
"""
import argparse
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from runtimes import ROOT, time_ort, time_shrink  # noqa: E402


def mlp1024(path):
    import torch
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 1024), torch.nn.ReLU(),
                              torch.nn.Linear(1024, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 10)).eval()
    torch.onnx.export(net, torch.zeros(1, 1, 28, 28), path, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, opset_version=13)
    return path


def quantize(shrink, model, out, mode):
    subprocess.run([shrink, "quantize", model, "-o", out, "--mode", mode, "--no-eval", "--json"], check=True,
                   stdout=subprocess.DEVNULL)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("models", nargs="*", help="float ONNX models (Fashion-MNIST input)")
    p.add_argument("--mlp", action="store_true", help="also an MLP 784-1024-1024-10 built with PyTorch")
    p.add_argument("--shrink", default=os.path.join(ROOT, "build", "shrink"))
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--runs", type=int, default=30)
    a = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="shrink-bench-")
    models = list(a.models) + ([mlp1024(os.path.join(tmp, "mlp1024.onnx"))] if a.mlp else [])
    print(f"threads {a.threads}, batch {a.batch}, median of {a.runs} runs")
    print(f"{'model':28} {'shrink ms':>10} {'ORT ms':>9} {'shrink/ORT':>11} {'int8 speed-up shrink':>21} "
          f"{'int8 speed-up ORT':>18} {'MB':>6}")
    for model in models:
        name = os.path.splitext(os.path.basename(model))[0]
        base_s = time_shrink(a.shrink, model, a.batch, a.threads, a.runs)
        base_o = time_ort(model, a.batch, a.threads, a.runs)
        mb = os.path.getsize(model) / 1e6
        print(f"{name + ' fp32':28} {base_s:10.3f} {base_o:9.3f} {base_s / base_o:11.2f} {'':21} {'':18} {mb:6.2f}")
        modes = ["static"] + (["dynamic"] if "mlp" in name else [])
        for mode in modes:
            q = quantize(a.shrink, model, os.path.join(tmp, f"{name}.{mode}.onnx"), mode)
            s = time_shrink(a.shrink, q, a.batch, a.threads, a.runs)
            o = time_ort(q, a.batch, a.threads, a.runs)
            mb = os.path.getsize(q) / 1e6
            print(f"{name + ' int8 ' + mode:28} {s:10.3f} {o:9.3f} {s / o:11.2f} {base_s / s:21.2f} {base_o / o:18.2f} "
                  f"{mb:6.2f}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
