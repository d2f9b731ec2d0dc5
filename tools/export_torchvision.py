#!/usr/bin/python3
"""Exports a torchvision model (random weights, seeded; nothing is downloaded) to ONNX
with an input tensor and PyTorch's output for it, as .npy files.

  export_torchvision.py --model resnet18 --out DIR [--training] [--size 96] [--batch 2]

--model vit_tiny is torchvision's VisionTransformer with 2 layers, 4 heads and width 64
(patches of size/4).

Writes DIR/model.onnx, DIR/input.npy, DIR/output.npy. With --training the model is
exported with TrainingMode.TRAINING (BatchNormalization kept, batch statistics) and
PyTorch's output is taken in train mode; Dropout is set to p=0 so the output is
deterministic. With --bn-eval the model is exported in inference mode but with its
BatchNormalization nodes kept (PyTorch's eval export always folds them): random
running statistics and affine parameters, output taken in eval mode. With
--dynamic-batch the batch is the symbol N on the input and output.
"""
import argparse
import os

import warnings

import numpy as np
import torch
import torchvision


def main():
    warnings.filterwarnings("ignore")
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--training", action="store_true")
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--opset", type=int, default=13)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bn-eval", action="store_true")
    p.add_argument("--dynamic-batch", action="store_true", help="batch exported as the symbol N")
    a = p.parse_args()

    torch.manual_seed(a.seed)
    if a.model == "vit_tiny":  # a small VisionTransformer: 2 layers, 4 heads, width 64
        model = torchvision.models.VisionTransformer(image_size=a.size, patch_size=a.size // 4, num_layers=2,
                                                     num_heads=4, hidden_dim=64, mlp_dim=128, num_classes=10)
    else:
        model = getattr(torchvision.models, a.model)(weights=None)
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
        # torchvision's ViT starts its classifier at zero: every output would be 0 and
        # every comparison against it vacuous.
        if isinstance(m, torch.nn.Linear) and not m.weight.detach().any():
            with torch.no_grad():
                m.weight.normal_(0, 0.02)
                if m.bias is not None:
                    m.bias.uniform_(-0.1, 0.1)
    if a.bn_eval:
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                with torch.no_grad():
                    m.running_mean.uniform_(-0.5, 0.5)
                    m.running_var.uniform_(0.5, 2.0)
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.5, 0.5)
                m.momentum = 0.0  # the training-mode trace must not move the statistics
    model.train(a.training or a.bn_eval)
    x = torch.randn(a.batch, 3, a.size, a.size)
    os.makedirs(a.out, exist_ok=True)
    keep_bn = a.training or a.bn_eval
    mode = torch.onnx.TrainingMode.TRAINING if keep_bn else torch.onnx.TrainingMode.EVAL
    path = os.path.join(a.out, "model.onnx")
    torch.onnx.export(model, x, path + ".tmp", opset_version=a.opset, training=mode,
                      do_constant_folding=not keep_bn, input_names=["input"],
                      output_names=["output"],
                      dynamic_axes={"input": {0: "N"}, "output": {0: "N"}} if a.dynamic_batch else None)
    if a.bn_eval:
        import onnx
        m = onnx.load(path + ".tmp")
        for n in m.graph.node:
            if n.op_type == "BatchNormalization":
                del n.output[1:]
                keep = [x for x in n.attribute if x.name != "training_mode"]
                del n.attribute[:]
                n.attribute.extend(keep)
        onnx.save(m, path + ".tmp")
        model.eval()
    os.replace(path + ".tmp", path)
    with torch.no_grad():
        y = model(x)
    np.save(os.path.join(a.out, "input.npy"), x.numpy())
    np.save(os.path.join(a.out, "output.npy"), y.numpy())


if __name__ == "__main__":
    main()
