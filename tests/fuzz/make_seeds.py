#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (tests/fuzz/corpus/<target>/): small
valid files of each format, made by numpy and by hand from the formats' specs, plus
a few near misses. The ONNX target's seeds are ONNX's own backend test models
(libonnx-testdata), read in place by scripts/fuzz.sh and the replay test.
Run with Debian's python3 (numpy); the output is committed."""
import gzip
import io
import os
import struct
import sys

import numpy as np
from numpy.lib import format as npformat

here = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(here, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def npy(a, version=None):
    b = io.BytesIO()
    npformat.write_array(b, a, version=version)
    return b.getvalue()


rng = np.random.default_rng(0)
put("npy", "f4_2x3_v1", npy(rng.standard_normal((2, 3)).astype(np.float32), (1, 0)))
put("npy", "f8_v2", npy(np.arange(5, dtype=np.float64), (2, 0)))
put("npy", "i8_v3", npy(np.arange(4, dtype=np.int64).reshape(2, 2), (3, 0)))
put("npy", "u1_image", npy(rng.integers(0, 255, (1, 1, 4, 4), dtype=np.uint8)))
put("npy", "bool", npy(np.array([True, False, True])))
put("npy", "scalar", npy(np.float32(3.5)))
put("npy", "empty", npy(np.zeros((0, 3), np.int32)))
put("npy", "f2", npy(np.ones((2,), np.float16)))
put("npy", "fortran", npy(np.asfortranarray(np.ones((2, 3), np.float32))))
put("npy", "big_endian", npy(np.ones((2,), ">f4")))


def idx(a):
    header = bytes([0, 0, 0x08, a.ndim]) + b"".join(struct.pack(">I", d) for d in a.shape)
    return header + a.astype(np.uint8).tobytes()


put("idx", "images", idx(rng.integers(0, 255, (3, 4, 4))))
put("idx", "labels", idx(np.array([1, 0, 9])))
put("idx", "images.gz", gzip.compress(idx(rng.integers(0, 255, (2, 5, 5))), mtime=0))
put("idx", "rank4", idx(rng.integers(0, 255, (2, 1, 3, 3))))
put("idx", "truncated", idx(rng.integers(0, 255, (2, 4, 4)))[:-3])

record10 = bytes([3]) + rng.integers(0, 255, 3072, dtype=np.uint8).tobytes()
record100 = bytes([1, 42]) + rng.integers(0, 255, 3072, dtype=np.uint8).tobytes()
put("cifar", "cifar10_2records", record10 + bytes([9]) + record10[1:])
put("cifar", "cifar100_1record", record100)
put("cifar", "cifar10.gz", gzip.compress(record10, mtime=0))
put("cifar", "bad_label", bytes([200]) + record10[1:])
print("seeds written under", os.path.join(here, "corpus"))


def npz(compressed=False, **arrays):
    b = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(b, **arrays)
    return b.getvalue()


put("npz", "images_labels", npz(x=rng.integers(0, 255, (2, 1, 4, 4), dtype=np.uint8), y=np.array([0, 1])))
put("npz", "float_compressed", npz(True, x=rng.standard_normal((3, 5)).astype(np.float32)))
put("npz", "no_x", npz(images=np.zeros((1, 2), np.float32)))
put("npz", "truncated", npz(x=np.ones((2, 3), np.float32))[:-20])


def image(fmt, mode, size, **kw):
    from PIL import Image
    b = io.BytesIO()
    a = rng.integers(0, 255, (size[1], size[0], {"L": 1, "RGB": 3, "RGBA": 4}[mode]), dtype=np.uint8)
    Image.fromarray(a[..., 0] if mode == "L" else a, mode).save(b, fmt, **kw)
    return b.getvalue()


put("image", "rgb.jpg", image("JPEG", "RGB", (33, 17), quality=80))
put("image", "gray.jpg", image("JPEG", "L", (16, 40)))
put("image", "progressive.jpg", image("JPEG", "RGB", (40, 30), progressive=True))
put("image", "rgb.png", image("PNG", "RGB", (21, 22)))
put("image", "rgba.png", image("PNG", "RGBA", (30, 25)))
put("image", "gray.png", image("PNG", "L", (24, 24)))
put("image", "truncated.jpg", image("JPEG", "RGB", (64, 48))[:300])
put("image", "truncated.png", image("PNG", "RGB", (64, 48))[:200])
