#!/usr/bin/env python3
"""shrink compress against PyTorch's own compression tools, on the same trained model and data.

PyTorch, as its tutorials do it: torch.nn.utils.prune.global_unstructured (L1) at the sparsity
shrink's search chose, fine-tuning through the masks, prune.remove, then torch.ao.quantization
static int8 (fused Conv/Linear+ReLU, onednn engine, 32 calibration batches); saved with
torch.save and exported to ONNX where it can be. shrink: `shrink compress MODEL --max-drop P`
(its default size recipe). Both read the same Fashion-MNIST files (the training images the
model was trained on, the 10,000 test images for the figures) and both start from the same
weights (the ONNX model's, loaded into an equivalent torch.nn module). Prints bytes on disk,
test accuracy, ONNX Runtime latency (batch 64, the machine's threads) and wall time of each.

  /usr/bin/python3 bench/compress_vs_pytorch.py build/demo/lenet5.onnx [--max-drop 0.5]
"""
import argparse
import copy
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import onnx
import torch
import torch.nn.utils.prune as prune
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from runtimes import ROOT, time_ort  # noqa: E402


def idx(data_dir, name):
    raw = gzip.open(os.path.join(data_dir, name + ".gz")).read()
    return np.frombuffer(raw[16:] if "images" in name else raw[8:], np.uint8)


def split(data_dir, prefix, meta):
    x = idx(data_dir, prefix + "-images-idx3-ubyte").reshape(-1, 1, 28, 28).astype(np.float32) / 255.0
    y = idx(data_dir, prefix + "-labels-idx1-ubyte").astype(np.int64)
    mean = float(meta.get("shrink.input_mean", "0").split(",")[0])
    std = float(meta.get("shrink.input_std", "1").split(",")[0])
    return torch.from_numpy((x - mean) / std), torch.from_numpy(y)


class Net(torch.nn.Module):
    """A Conv/Relu/MaxPool/Flatten/Gemm chain read from ONNX, with quant stubs for static int8."""

    def __init__(self, model):
        super().__init__()
        w = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in model.graph.initializer}
        self.names, layers = [], []
        for n in model.graph.node:
            at = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
            if n.op_type == "Conv":
                W = w[n.input[1]]
                m = torch.nn.Conv2d(W.shape[1], W.shape[0], W.shape[2:], stride=at.get("strides", [1, 1]),
                                    padding=at.get("pads", [0, 0, 0, 0])[:2])
                m.weight.data, m.bias.data = W, w[n.input[2]]
            elif n.op_type == "Gemm":
                W = w[n.input[1]]
                W = W if at.get("transB", 0) else W.t().contiguous()
                m = torch.nn.Linear(W.shape[1], W.shape[0])
                m.weight.data, m.bias.data = W, w[n.input[2]]
            elif n.op_type == "Relu":
                m = torch.nn.ReLU()
            elif n.op_type == "MaxPool":
                m = torch.nn.MaxPool2d(at["kernel_shape"], at.get("strides", at["kernel_shape"]))
            elif n.op_type == "Flatten":
                m = torch.nn.Flatten()
            else:
                raise SystemExit(f"{n.op_type}: this benchmark maps Conv/Gemm/Relu/MaxPool/Flatten chains only")
            self.names.append(n.name)
            layers.append(m)
        self.body = torch.nn.Sequential(*layers)
        self.quant, self.dequant = torch.ao.quantization.QuantStub(), torch.ao.quantization.DeQuantStub()

    def forward(self, x):
        return self.dequant(self.body(self.quant(x)))


def accuracy(net, x, y):
    net.eval()
    with torch.no_grad():
        return float((torch.cat([net(x[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)]) == y).float().mean())


def finetune(net, x, y, epochs, lr, seed):
    torch.manual_seed(seed)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    steps = epochs * ((len(x) + 127) // 128)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 128):
            b = perm[i:i + 128]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[b]), y[b]).backward()
            opt.step()
            sched.step()


def pytorch_pipeline(model, x_fit, y_fit, sparsity, epochs, out):
    t0 = time.perf_counter()
    net = Net(model)
    layers = [(m, "weight") for m in net.body if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    prune.global_unstructured(layers, pruning_method=prune.L1Unstructured, amount=sparsity)
    finetune(net, x_fit, y_fit, epochs, 0.01, 0)
    for m, name in layers:
        prune.remove(m, name)
    pruned = copy.deepcopy(net).eval()
    t_prune = time.perf_counter() - t0
    # Static int8 as the tutorial does it: fuse, prepare, calibrate, convert.
    torch.backends.quantized.engine = "onednn"
    q = copy.deepcopy(pruned).eval()
    fuse, mods = [], list(q.body)
    for i in range(len(mods) - 1):
        if isinstance(mods[i], (torch.nn.Conv2d, torch.nn.Linear)) and isinstance(mods[i + 1], torch.nn.ReLU):
            fuse.append([f"body.{i}", f"body.{i + 1}"])
    q = torch.ao.quantization.fuse_modules(q, fuse)
    q.qconfig = torch.ao.quantization.get_default_qconfig("onednn")
    torch.ao.quantization.prepare(q, inplace=True)
    g = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(x_fit), generator=g)[:32 * 64]
    with torch.no_grad():
        for i in range(0, len(idx), 64):
            q(x_fit[idx[i:i + 64]])
    torch.ao.quantization.convert(q, inplace=True)
    seconds = time.perf_counter() - t0
    files = {}
    for name, m in (("pruned", pruned), ("int8", q)):
        pt = os.path.join(out, f"pytorch_{name}.pt")
        torch.save(m.state_dict(), pt)
        files[name] = {"pt": pt}
        path = os.path.join(out, f"pytorch_{name}.onnx")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(m, torch.zeros(1, 1, 28, 28), path, input_names=["input"], output_names=["logits"],
                                  dynamic_axes={"input": {0: "N"}}, opset_version=17 if name == "pruned" else 13)
            files[name]["onnx"] = path
        except Exception as e:  # torch.onnx cannot export every quantized module
            files[name]["onnx_error"] = str(e).splitlines()[0][:120]
    return pruned, q, files, seconds, t_prune


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model", help="trained model (ONNX; a Conv/Gemm chain such as the zoo's lenet5)")
    p.add_argument("--shrink", default=os.path.join(ROOT, "build", "shrink"))
    p.add_argument("--data", default=os.environ.get("SHRINK_DATA", "/usr/share/datasets/fashion-mnist"))
    p.add_argument("--max-drop", type=float, default=0.5)
    p.add_argument("--epochs", type=int, default=3, help="PyTorch fine-tuning epochs after pruning")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--out", default=None)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    out = a.out or tempfile.mkdtemp(prefix="shrink-vs-pytorch-")
    os.makedirs(out, exist_ok=True)
    model = onnx.load(a.model)
    meta = {m.key: m.value for m in model.metadata_props}
    x_train, y_train = split(a.data, "train", meta)
    x_test, y_test = split(a.data, "t10k", meta)
    # The training images the model was not validated on: shrink train --holdout's split
    # (at::randperm with the same seeded generator), so PyTorch fine-tunes on what shrink does.
    fit = torch.arange(len(x_train))
    if "shrink.holdout" in meta:
        n, seed = (int(v) for v in meta["shrink.holdout"].split(","))
        g = torch.Generator().manual_seed(seed ^ 0xc0ffee5eed)
        fit = torch.randperm(len(x_train), generator=g)[n:].sort().values
    x_fit, y_fit = x_train[fit], y_train[fit]

    t0 = time.perf_counter()
    cdir = os.path.join(out, "shrink_compress")
    subprocess.run([a.shrink, "compress", a.model, "-o", cdir, "--max-drop", str(a.max_drop), "--resume", "--json"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shrink_seconds = time.perf_counter() - t0
    rep = json.load(open(os.path.join(cdir, "report.json")))
    lineage = [rep["candidates"][i] for i in rep["lineage"]]
    chosen = lineage[-1]["metrics"]
    sparsity = 1 - chosen["nonzeros"] / chosen["parameters"]

    pruned, q, files, torch_seconds, prune_seconds = pytorch_pipeline(model, x_fit, y_fit, sparsity, a.epochs, out)
    base = Net(model)
    rows = [("original (dense float ONNX)", os.path.getsize(a.model), accuracy(base, x_test, y_test), a.model, None)]
    rows.append((f"PyTorch pruned {100 * sparsity:.1f}% (torch.save)", os.path.getsize(files["pruned"]["pt"]),
                 accuracy(pruned, x_test, y_test), files["pruned"].get("onnx"), prune_seconds))
    rows.append(("PyTorch pruned + static int8 (torch.save)", os.path.getsize(files["int8"]["pt"]),
                 accuracy(q, x_test, y_test), files["int8"].get("onnx"), torch_seconds))
    shrink_model = os.path.join(cdir, "model.onnx")
    rows.append(("shrink compress (model.onnx)", os.path.getsize(shrink_model), rep["final"]["chosen"]["accuracy"],
                 shrink_model, shrink_seconds))
    print(f"same trained model ({a.model}), Fashion-MNIST test set; ORT latency: batch 64, {a.threads} threads, median")
    print(f"{'':42} {'bytes':>9} {'x smaller':>9} {'accuracy':>9} {'ORT ms':>8} {'wall s':>7}")
    for name, size, acc, onnx_file, seconds in rows:
        ms = f"{time_ort(onnx_file, 64, a.threads, 50):8.3f}" if onnx_file else f"{'n/a':>8}"
        wall = f"{seconds:7.1f}" if seconds is not None else f"{'':>7}"
        print(f"{name:42} {size:9d} {rows[0][1] / size:9.1f} {100 * acc:8.2f}% {ms} {wall}")
    for name in ("pruned", "int8"):
        if "onnx" in files[name]:
            print(f"PyTorch {name} exported to ONNX: {os.path.getsize(files[name]['onnx'])} bytes ({files[name]['onnx']})")
        else:
            print(f"PyTorch {name} not exportable to ONNX: {files[name]['onnx_error']}")
    print(f"shrink's chosen lineage: " + " -> ".join(
        c["stage"] + ("" if c["stage"] == "original" else "(" + ", ".join(f"{k}={v}" for k, v in c["settings"].items()
                                                                          if k in ("amount", "bits", "method")) + ")")
        for c in lineage))


if __name__ == "__main__":
    main()
