#!/usr/bin/env python3
"""Image data written by other tools (PIL, numpy), for shrink's tests and benchmarks.

  idx-to-folder SRC OUT [--n N] [--npz-only]
                                  the IDX test set in SRC as OUT/folder/<class>/<i>.png,
                                  OUT/test.npz (uint8 x [N,1,H,W], int64 y) and
                                  OUT/test_float.npz (x normalised by --mean/--std)
  jpegs OUT --n N [--classes C] [--gray-every K] [--seed S] [--min-side A --max-side B]
                                  N smooth random RGB JPEGs of varied sizes (ImageFolder
                                  layout with C classes; 0: the images directly); every
                                  K-th one grayscale
  torchvision-batch DIR OUT.npy --resize R --crop C --mean m,m,m --std s,s,s [--n N]
                                  the first N images of the folder as torchvision's
                                  ImageFolder + Resize(R) + CenterCrop(C) + ToTensor +
                                  Normalize give them (the reference preprocessing)
Run with Debian's /usr/bin/python3 (PIL, numpy, torchvision).
"""
import argparse
import gzip
import os

import numpy as np
from PIL import Image


def idx(path):
    for p in (path + '.gz', path):
        if os.path.exists(p):
            b = (gzip.open if p.endswith('.gz') else open)(p, 'rb').read()
            nd = b[3]
            dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], 'big') for i in range(nd)]
            return np.frombuffer(b, np.uint8, offset=4 + 4 * nd).reshape(dims)
    raise SystemExit(f'{path}[.gz]: not found')


def idx_to_folder(a):
    x = idx(os.path.join(a.src, 't10k-images-idx3-ubyte'))[:a.n]
    y = idx(os.path.join(a.src, 't10k-labels-idx1-ubyte'))[:a.n]
    if not a.npz_only:
        for c in range(int(y.max()) + 1):
            os.makedirs(f'{a.out}/folder/{c:02d}', exist_ok=True)
        for i, (im, label) in enumerate(zip(x, y)):
            Image.fromarray(im).save(f'{a.out}/folder/{label:02d}/{i:05d}.png')
    np.savez(f'{a.out}/test.npz', x=x[:, None], y=y.astype(np.int64))
    mean, std = float(a.mean), float(a.std)
    np.savez_compressed(f'{a.out}/test_float.npz', x=((x[:, None] / 255.0 - mean) / std).astype(np.float32), y=y)


def jpegs(a):
    rng = np.random.default_rng(a.seed)
    for i in range(a.n):
        h, w = int(rng.integers(a.min_side, a.max_side)), int(rng.integers(a.min_side, a.max_side))
        # Smooth content (a few low-frequency waves), as photographs compress.
        yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
        img = np.zeros((h, w, 3))
        for c in range(3):
            for _ in range(3):
                fy, fx, ph = rng.uniform(0.5, 6, 2).tolist() + [rng.uniform(0, 6.28)]
                img[..., c] += np.sin(2 * np.pi * (fy * yy + fx * xx) + ph)
        img = ((img - img.min()) / (np.ptp(img) + 1e-9) * 255).astype(np.uint8)
        pil = Image.fromarray(img)
        if a.gray_every and i % a.gray_every == a.gray_every - 1:
            pil = pil.convert('L')
        d = a.out if a.classes == 0 else os.path.join(a.out, f'class{i % a.classes}')
        os.makedirs(d, exist_ok=True)
        pil.save(os.path.join(d, f'img{i:05d}.jpg'), quality=90)


def torchvision_batch(a):
    import torch
    import torchvision.transforms as T
    from torchvision.datasets import ImageFolder
    tf = T.Compose([T.Resize(a.resize), T.CenterCrop(a.crop), T.ToTensor(),
                    T.Normalize([float(v) for v in a.mean.split(',')], [float(v) for v in a.std.split(',')])])
    ds = ImageFolder(a.dir, transform=tf)
    np.save(a.output, torch.stack([ds[i][0] for i in range(min(a.n, len(ds)))]).numpy())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='cmd', required=True)
    s = sub.add_parser('idx-to-folder')
    s.add_argument('src')
    s.add_argument('out')
    s.add_argument('--n', type=int, default=10000)
    s.add_argument('--npz-only', action='store_true', help='no PNG folder')
    s.add_argument('--mean', default='0.2860')
    s.add_argument('--std', default='0.3530')
    s = sub.add_parser('jpegs')
    s.add_argument('out')
    s.add_argument('--n', type=int, required=True)
    s.add_argument('--classes', type=int, default=0)
    s.add_argument('--gray-every', type=int, default=0)
    s.add_argument('--min-side', type=int, default=180)
    s.add_argument('--max-side', type=int, default=420)
    s.add_argument('--seed', type=int, default=0)
    s = sub.add_parser('torchvision-batch')
    s.add_argument('dir')
    s.add_argument('output')
    s.add_argument('--resize', type=int, required=True)
    s.add_argument('--crop', type=int, required=True)
    s.add_argument('--mean', required=True)
    s.add_argument('--std', required=True)
    s.add_argument('--n', type=int, default=16)
    a = p.parse_args()
    {'idx-to-folder': idx_to_folder, 'jpegs': jpegs, 'torchvision-batch': torchvision_batch}[a.cmd](a)


if __name__ == '__main__':
    main()
