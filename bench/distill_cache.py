#!/usr/bin/env python3
"""Teacher-output cache: one distillation epoch with the teacher recomputed every step
against the same epoch reading the teacher's logits from the on-disk cache, same student,
seed and threads, side by side (the cache is built first and not timed):

  /usr/bin/python3 bench/distill_cache.py --teacher resnet20.onnx --student lenet5
"""
import argparse
import json
import os
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def distill(binary, teacher, student, threads, cache=None):
    cmd = [binary, "--threads", str(threads), "distill", "--teacher", teacher, "--student", student, "--epochs", "1",
           "--json", "-o", os.path.join(tempfile.gettempdir(), "shrink_bench_student.onnx")]
    if cache:
        cmd += ["--cache", cache]
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return out["students"][0]["seconds"], out.get("cache", {})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shrink", default=os.path.join(ROOT, "build", "shrink"))
    p.add_argument("--teacher", required=True)
    p.add_argument("--student", default="lenet5")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        _, built = distill(a.shrink, a.teacher, a.student, a.threads, cache)
        cached, info = distill(a.shrink, a.teacher, a.student, a.threads, cache)
        assert info.get("hit"), "the second run should read the cache"
    live, _ = distill(a.shrink, a.teacher, a.student, a.threads)
    print(f"teacher {os.path.basename(a.teacher)}, student {a.student}, {a.threads} threads, one epoch")
    print(f"cache build (once): {built.get('build_seconds', 0):.1f} s")
    print(f"{'teacher recomputed':22} {live:8.1f} s")
    print(f"{'teacher cached':22} {cached:8.1f} s")
    print(f"speed-up: {live / cached:.2f}x")


if __name__ == "__main__":
    main()
