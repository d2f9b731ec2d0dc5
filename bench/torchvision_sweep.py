#!/usr/bin/python3
"""Every classification model of torchvision, exported by PyTorch, through shrink.

  torchvision_sweep.py [--shrink build/shrink] [--models a,b | --smallest] [--json FILE]
                       [--checks a,b,c,d,e] [--work DIR] [--keep]

Each model is built with seeded random weights and randomised BatchNorm statistics
(nothing is downloaded), exported in eval mode with a symbolic batch (dynamic_axes on
input and output) at a small input the architecture accepts, and checked:
  (a) `shrink run` equals PyTorch (1e-4, relative to the output's scale)
  (b) `shrink convert --passes inference`'s export runs in ONNX Runtime, equal to PyTorch
  (c) every extent known in PyTorch's file - declared, or inferred by ONNX's shape inference
      with data propagation (a number, or the batch) - shrink's export knows too
  (d) `shrink prune --method ln-structured --amount 0.5 --no-eval --no-latency` keeps <= 70% of the
      parameters, and ONNX Runtime runs the result with the right output shape
  (e) `shrink factorize --method tucker --rank vbmf --no-eval --no-latency` runs in ONNX Runtime
It prints a table per family and `N passed, M failed` per check. --smallest takes one
model per family (what the test suite runs). Exit status 1 when any check failed that
--expect-fail does not name, or one it names passed.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKS = "abcde"
BATCH = "N"


def family(name):
    for prefix in ("efficientnet_v2", "swin_v2", "regnet_x", "regnet_y", "wide_resnet", "mobilenet_v2",
                   "mobilenet_v3", "shufflenet_v2", "squeezenet", "resnext", "convnext", "densenet",
                   "efficientnet", "mnasnet", "inception", "googlenet", "maxvit", "alexnet", "resnet", "swin",
                   "vgg", "vit"):
        if name.startswith(prefix):
            return prefix
    return name


def construct(name):
    """The model, its input size and constructor keyword arguments."""
    import torchvision
    kwargs, size = {}, 64
    if name in ("googlenet", "inception_v3"):
        kwargs = {"aux_logits": False, "init_weights": False}
        size = 80 if name == "inception_v3" else 64
    elif name.startswith("vit"):
        patch = int(name.split("_")[-1])
        size = patch * 2
        kwargs = {"image_size": size}
    elif name.startswith("swin"):
        size = 64
    elif name == "maxvit_t":
        size = 224  # each stage's extent must divide by its 7x7 partitions
        kwargs = {"input_size": (size, size)}
    elif name == "alexnet" or name.startswith("vgg"):
        size = 224  # the adaptive pool's 6x6 / 7x7 must divide the features' extent
    model = getattr(torchvision.models, name)(weights=None, **kwargs)
    return model, size


def randomise(model, torch):
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
            with torch.no_grad():
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                if m.weight is not None:
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.2, 0.2)
        # torchvision's ViT starts its classifier at zero (weight and bias): every output
        # would be 0 and every comparison vacuous.
        if isinstance(m, torch.nn.Linear) and not m.weight.detach().any():
            with torch.no_grad():
                m.weight.normal_(0, 0.02)
                if m.bias is not None:
                    m.bias.uniform_(-0.1, 0.1)


def zero_symbolic(g, x):
    """aten::zero (Tensor.zero_), which PyTorch 1.13 cannot export at any opset: Swin V2
    zeroes the key's slice of the qkv bias in forward. Zeros of x's shape and type."""
    import torch
    return g.op("ConstantOfShape", g.op("Shape", x), value_t=torch.tensor([0.0]))


def export(name, out, seed=0):
    import torch
    from torch.onnx import register_custom_op_symbolic
    register_custom_op_symbolic("aten::zero", zero_symbolic, 13)
    torch.manual_seed(seed)
    model, size = construct(name)
    randomise(model, torch)
    model.eval()
    x = torch.randn(2, 3, size, size)
    path = os.path.join(out, "model.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, x, path, opset_version=13, input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: BATCH}, "output": {0: BATCH}})
        with torch.no_grad():
            y = model(x)
    np.save(os.path.join(out, "input.npy"), x.numpy())
    np.save(os.path.join(out, "output.npy"), y.numpy())
    return path, sum(p.numel() for p in model.parameters())


def run(cmd, timeout=1800):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    return r.returncode, r.stdout


def last_line(text):
    lines = [l for l in text.strip().splitlines() if l.strip()]
    return lines[-1][:200] if lines else ""


def close(got, want):
    if got.shape != want.shape:
        return f"shape {list(got.shape)}, want {list(want.shape)}"
    scale = max(1.0, float(np.abs(want).max()))
    err = float(np.abs(got - want).max())
    return None if err <= 1e-4 * scale else f"max error {err:.3g} (scale {scale:.3g})"


def ort(model, out_dir, x):
    code, text = run(["node", os.path.join(ROOT, "tools", "ort_run.js"), "run", model, out_dir, x])
    if code != 0:
        return None, last_line(text)
    return np.load(os.path.join(out_dir, "output_0.npy")), None


def parameters(path):
    import onnx
    from onnx import numpy_helper
    m = onnx.load(path)
    total = sum(int(np.prod(t.dims)) for t in m.graph.initializer if t.data_type == onnx.TensorProto.FLOAT)
    total += sum(int(np.prod(s.dims)) for s in m.graph.sparse_initializer)
    return total


def known_extents(torch_model, shrink_model):
    """Extents PyTorch's exporter knows (numbers and the batch) that shrink's export does not."""
    import onnx
    # PyTorch 1.13 writes almost no value_info: the reference is ONNX's own shape
    # inference (with data propagation) on PyTorch's file, beside its declared outputs.
    ref = onnx.shape_inference.infer_shapes(onnx.load(torch_model, load_external_data=False), data_prop=True)
    got = onnx.load(shrink_model, load_external_data=False)
    ours = {v.name: v for v in list(got.graph.value_info) + list(got.graph.output)}
    missing, checked = [], 0
    for v in list(ref.graph.value_info) + list(ref.graph.output):
        if not v.type.tensor_type.HasField("shape") or v.name not in ours:
            continue
        theirs = v.type.tensor_type.shape.dim
        mine = ours[v.name].type.tensor_type
        if not mine.HasField("shape") or len(mine.shape.dim) != len(theirs):
            missing.append(f"{v.name}: no shape")
            continue
        for i, (d, e) in enumerate(zip(theirs, mine.shape.dim)):
            if d.HasField("dim_value"):
                checked += 1
                if not e.HasField("dim_value") or e.dim_value != d.dim_value:
                    missing.append(f"{v.name}[{i}]: {d.dim_value}, shrink {e.dim_value or e.dim_param or '?'}")
            elif d.dim_param == BATCH:
                checked += 1
                if not e.dim_param or BATCH not in e.dim_param.split("*"):
                    missing.append(f"{v.name}[{i}]: {BATCH}, shrink {e.dim_value or e.dim_param or '?'}")
    return missing, checked


def sweep_one(name, shrink, work, checks):
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    res = {"model": name, "family": family(name)}
    t0 = time.time()
    try:
        model, params = export(name, d)
    except Exception as e:  # noqa: BLE001 - a model PyTorch cannot export is reported, not fatal
        res["export"] = f"{type(e).__name__}: {str(e)[:150]}"
        return res
    res["params"] = params
    x, want = os.path.join(d, "input.npy"), np.load(os.path.join(d, "output.npy"))

    def check(key, fn):
        if key not in checks:
            return
        try:
            res[key] = fn()
        except subprocess.TimeoutExpired:
            res[key] = "timed out"
        except Exception as e:  # noqa: BLE001
            res[key] = f"{type(e).__name__}: {e}"[:200]

    def a():
        code, text = run([shrink, "run", model, "-i", x, "-o", os.path.join(d, "a.npy")])
        return last_line(text) if code else close(np.load(os.path.join(d, "a.npy")), want)

    def b():
        out = os.path.join(d, "inference.onnx")
        code, text = run([shrink, "convert", model, "-o", out, "--passes", "inference"])
        if code:
            return last_line(text)
        got, err = ort(out, d, x)
        return err or close(got, want)

    def c():
        out = os.path.join(d, "none.onnx")
        code, text = run([shrink, "convert", model, "-o", out, "--passes", "none"])
        if code:
            return last_line(text)
        missing, checked = known_extents(model, out)
        res["c_checked"] = checked
        return f"{len(missing)} of {checked} unknown, e.g. {missing[0]}" if missing else None

    def dd():
        out = os.path.join(d, "pruned.onnx")
        code, text = run([shrink, "prune", model, "-o", out, "--method", "ln-structured", "--amount", "0.5", "--no-eval", "--no-latency"])
        if code:
            return last_line(text)
        before, after = parameters(model), parameters(out)
        res["d_kept"] = after / before
        got, err = ort(out, d, x)
        if err:
            return err
        if got.shape != want.shape:
            return f"output shape {list(got.shape)}, want {list(want.shape)}"
        return None if after <= 0.7 * before else f"kept {100 * after / before:.1f}% of the parameters"

    def e():
        out = os.path.join(d, "tucker.onnx")
        code, text = run([shrink, "factorize", model, "-o", out, "--method", "tucker", "--rank", "vbmf", "--no-eval", "--no-latency"])
        if code:
            return last_line(text)
        got, err = ort(out, d, x)
        if err:
            return err
        return None if got.shape == want.shape else f"output shape {list(got.shape)}, want {list(want.shape)}"

    for key, fn in zip(CHECKS, (a, b, c, dd, e)):
        check(key, fn)
    res["seconds"] = round(time.time() - t0, 1)
    return res


def smallest_per_family(names):
    import torchvision
    best = {}
    for n in names:
        try:
            count = sum(p.numel() for p in construct(n)[0].parameters())
        except Exception:  # noqa: BLE001
            count = 0
        f = family(n)
        if f not in best or count < best[f][1]:
            best[f] = (n, count)
    return sorted(v[0] for v in best.values())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shrink", default=os.path.join(ROOT, "build", "shrink"))
    p.add_argument("--models", default="")
    p.add_argument("--smallest", action="store_true")
    p.add_argument("--checks", default=",".join(CHECKS))
    p.add_argument("--json", default="")
    p.add_argument("--work", default="")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--expect-fail", default="",
                   help="MODEL:CHECK,... failures known and documented (CHECK a-e, or export): "
                        "they do not fail the run, and one that passes does")
    a = p.parse_args()
    import torch
    import torchvision
    torch.set_num_threads(os.cpu_count() or 1)
    names = torchvision.models.list_models(module=torchvision.models)
    if a.models:
        names = a.models.split(",")
    elif a.smallest:
        names = smallest_per_family(names)
    checks = a.checks.replace(",", "")
    work = a.work or tempfile.mkdtemp(prefix="shrink-sweep-")
    results = []
    for n in names:
        r = sweep_one(n, os.path.abspath(a.shrink), work, checks)
        results.append(r)
        marks = " ".join(f"{k}:{'ok' if r.get(k, 'skip') is None else ('-' if k not in r else 'FAIL')}" for k in checks)
        print(f"{n:22s} {marks}  {r.get('seconds', 0):6.1f}s", flush=True)
        for k in checks:
            if r.get(k):
                print(f"    ({k}) {r[k]}", flush=True)
        if "export" in r:
            print(f"    export: {r['export']}", flush=True)
        if not a.keep:
            shutil.rmtree(os.path.join(work, n), ignore_errors=True)
    if not a.work and not a.keep:
        shutil.rmtree(work, ignore_errors=True)

    print("\nper family (passed/models per check):")
    fams = sorted({r["family"] for r in results})
    print(f"{'family':16s} " + " ".join(f"{k:>5s}" for k in checks))
    for f in fams:
        rs = [r for r in results if r["family"] == f]
        print(f"{f:16s} " + " ".join(f"{sum(r.get(k, 'x') is None for r in rs)}/{len(rs):<3d}" for k in checks))
    expected = {tuple(e.split(":")) for e in a.expect_fail.split(",") if e}
    failed = 0
    for k in checks:
        ok = sum(r.get(k, "x") is None for r in results)
        print(f"({k}) {ok} passed, {len(results) - ok} failed")
        for r in results:
            known = (r["model"], k) in expected or (r["model"], "export") in expected
            if (r.get(k, "x") is None) == known:
                failed += 1
                print(f"    {r['model']} ({k}): {'passed, expected to fail' if known else 'unexpected failure'}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
