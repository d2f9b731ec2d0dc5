#!/usr/bin/env python3
"""Distilled students against the same students trained alone: identical epochs, schedule,
learning rate and seeds, test accuracy on the full test set, mean over seeds; then the
feature (FitNets hint, attention transfer) and relation (RKD) variants and mutual learning,
each beside plain KD:

  /usr/bin/python3 bench/distill_accuracy.py --teacher resnet20.onnx --students lenet5,mlp

--teacher may be repeated: the students then learn the teachers' averaged soft targets.
Both sides get the same linear warm-up (--warmup, one epoch by default, as distill's own
default).
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(binary, args):
    out = subprocess.run([binary] + args + ["--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shrink", default=os.path.join(ROOT, "build", "shrink"))
    p.add_argument("--teacher", required=True, action="append")
    p.add_argument("--students", default="lenet5,mlp")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--temperature", type=float, default=2.0)
    p.add_argument("--alpha", type=float, default=0.5)
    p.add_argument("--variants", action="store_true", help="also hint, attention, RKD and mutual learning (seed 0)")
    p.add_argument("--variant-student", default="lenet5", help="the student of the hint, attention and RKD runs")
    p.add_argument("--hint", default="layer3.2.relu1.out:relu1.out", help="TEACHER_VALUE:STUDENT_VALUE (lenet5)")
    a = p.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    common = ["--epochs", str(a.epochs), "--lr", str(a.lr), "--warmup", str(a.warmup)]
    teachers = [x for t in a.teacher for x in ("--teacher", t)]
    kd = ["--temperature", str(a.temperature), "--alpha", str(a.alpha)]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "m.onnx")
        cache = os.path.join(tmp, "cache")
        names = ", ".join(f"{os.path.basename(t)} {100 * run(a.shrink, ['eval', t])['accuracy']:.2f}%" for t in a.teacher)
        print(f"teacher(s) {names}; T={a.temperature}, alpha={a.alpha}, {a.epochs} epochs, lr {a.lr}, "
              f"warm-up {a.warmup}, seeds {a.seeds}")
        print(f"{'student':10} {'alone (mean)':>13} {'distilled (mean)':>17} {'gain':>7}   per seed alone / distilled")
        solo = {}
        for s in a.students.split(","):
            alone, dist = [], []
            for seed in seeds:
                alone.append(run(a.shrink, ["train", "--model", s, "--seed", str(seed), "-o", out] + common)["test_accuracy"])
                r = run(a.shrink, ["distill"] + teachers + ["--student", s, "--seed", str(seed), "--cache", cache,
                                   "-o", out] + common + kd)
                dist.append(r["students"][0]["test_accuracy"])
            solo[s] = alone
            ma, md = statistics.mean(alone), statistics.mean(dist)
            per = " ".join(f"{100 * x:.2f}/{100 * y:.2f}" for x, y in zip(alone, dist))
            print(f"{s:10} {100 * ma:12.2f}% {100 * md:16.2f}% {100 * (md - ma):+6.2f}   {per}", flush=True)
        if not a.variants:
            return
        s = a.variant_student
        seed = str(seeds[0])
        if s not in solo:
            solo[s] = [run(a.shrink, ["train", "--model", s, "--seed", seed, "-o", out] + common)["test_accuracy"]]
        base = ["distill"] + teachers + ["--student", s, "--seed", seed, "--cache", cache, "-o", out] + common + kd
        r = run(a.shrink, base)
        print(f"{s} plain KD      (seed {seed}): {100 * r['students'][0]['test_accuracy']:.2f}% "
              f"(alone {100 * solo[s][0]:.2f}%)", flush=True)
        for name, extra in [("hint", ["--hint", a.hint, "--hint-weight", "0.1"]), ("attention", ["--attention", a.hint]),
                            ("rkd", ["--rkd", "0.1"])]:
            r = run(a.shrink, base + extra)
            print(f"{s} + {name:9} (seed {seed}): {100 * r['students'][0]['test_accuracy']:.2f}% "
                  f"(alone {100 * solo[s][0]:.2f}%)", flush=True)
        names = a.students.split(",")[:2]
        mutual = []
        for sd in seeds:
            r = run(a.shrink, ["distill", "--mode", "mutual", "--student", names[0], "--student", names[1], "--seed", str(sd),
                               "--temperature", "1", "--alpha", "0.5", "-o", out] + common)
            mutual.append([x["test_accuracy"] for x in r["students"]])
        for i, n in enumerate(names):
            mm = statistics.mean(m[i] for m in mutual)
            print(f"mutual {n:10} {100 * statistics.mean(solo[n]):.2f}% alone -> {100 * mm:.2f}% "
                  f"({100 * (mm - statistics.mean(solo[n])):+.2f})", flush=True)


if __name__ == "__main__":
    main()
