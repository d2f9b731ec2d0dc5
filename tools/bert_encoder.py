#!/usr/bin/python3
"""A Hugging-Face-style (BERT) encoder in PyTorch, for tests and benchmarks.

Layer: separate query/key/value Linear layers, heads split by
view(x.size(0), x.size(1), H, dh), an additive attention mask, post-norm, exact GELU MLP.
Encoder: N such layers with an all-zero mask. As a script, exports an encoder with seeded
random weights at opset 17 with a symbolic batch:

  /usr/bin/python3 tools/bert_encoder.py OUT.onnx [--layers 4] [--seq 128] [--width 768] [--heads 12] [--ffn 3072]
"""
import argparse
import math

import torch


class Layer(torch.nn.Module):
    def __init__(s, width, heads, ffn):
        super().__init__()
        s.h, s.dh = heads, width // heads
        s.query, s.key, s.value = (torch.nn.Linear(width, width) for _ in range(3))
        s.out = torch.nn.Linear(width, width)
        s.ln1, s.ln2 = torch.nn.LayerNorm(width), torch.nn.LayerNorm(width)
        s.fc1, s.fc2 = torch.nn.Linear(width, ffn), torch.nn.Linear(ffn, width)

    def split(s, x):
        return x.view(x.size(0), x.size(1), s.h, s.dh).permute(0, 2, 1, 3)

    def forward(s, x, mask):
        q, k, v = s.split(s.query(x)), s.split(s.key(x)), s.split(s.value(x))
        a = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(s.dh) + mask
        c = torch.matmul(a.softmax(-1), v).permute(0, 2, 1, 3).contiguous()
        x = s.ln1(x + s.out(c.view(c.size(0), c.size(1), s.h * s.dh)))
        return s.ln2(x + s.fc2(torch.nn.functional.gelu(s.fc1(x))))


class Encoder(torch.nn.Module):
    def __init__(s, layers, width, heads, ffn):
        super().__init__()
        s.layers = torch.nn.ModuleList(Layer(width, heads, ffn) for _ in range(layers))

    def forward(s, x):
        mask = torch.zeros(x.size(0), 1, 1, x.size(1))
        for layer in s.layers:
            x = layer(x, mask)
        return x


def main():
    p = argparse.ArgumentParser()
    p.add_argument("output")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--width", type=int, default=768)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--ffn", type=int, default=3072)
    a = p.parse_args()
    torch.manual_seed(0)
    m = Encoder(a.layers, a.width, a.heads, a.ffn).eval()
    torch.onnx.export(m, (torch.randn(2, a.seq, a.width),), a.output, opset_version=17, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})


if __name__ == "__main__":
    main()
