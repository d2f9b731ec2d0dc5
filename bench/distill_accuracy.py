#!/usr/bin/env python3
"""Distilled students against the same students trained alone: identical epochs, schedule,
learning rate and seeds, test accuracy on the full test set, mean over seeds; then the
feature (FitNets hint, attention transfer) and relation (RKD) variants and mutual learning,
each beside plain KD:

  /usr/bin/python3 bench/distill_accuracy.py --teacher resnet20.onnx --students lenet5,mlp

--teacher may be repeated: the students then learn the teachers' averaged soft targets.
Both sides get the same linear warm-up (--warmup, one epoch by default, as distill's own
default). --students "" skips the offline pairs; --mutual A,B runs Deep Mutual Learning
for that pair over the same seeds (each against its model trained alone):

  /usr/bin/python3 bench/distill_accuracy.py --teacher resnet20.onnx --students "" --mutual lenet5,lenet5 --epochs 20
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
    p.add_argument("--mutual", default="", help="A,B: the mutual-learning pair (default with --variants: the first two students)")
    p.add_argument("--mutual-temperature", type=float, default=1.0)
    p.add_argument("--mutual-alpha", type=float, default=0.5)
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
        for s in [x for x in a.students.split(",") if x]:
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
        if a.variants:
            variants(a, teachers, common, kd, seeds, solo, out, cache)
        pair = a.mutual.split(",") if a.mutual else a.students.split(",")[:2] if a.variants else []
        if pair:
            mutual(a, pair, common, seeds, solo, out)


def variants(a, teachers, common, kd, seeds, solo, out, cache):
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


def mutual(a, pair, common, seeds, solo, out):
    assert len(pair) == 2, "--mutual takes two students, A,B"
    for n in pair:  # the solo baseline over every seed
        if len(solo.get(n, [])) < len(seeds):
            solo[n] = [run(a.shrink, ["train", "--model", n, "--seed", str(sd), "-o", out] + common)["test_accuracy"]
                       for sd in seeds]
    got = []
    for sd in seeds:
        r = run(a.shrink, ["distill", "--mode", "mutual", "--student", pair[0], "--student", pair[1], "--seed", str(sd),
                           "--temperature", str(a.mutual_temperature), "--alpha", str(a.mutual_alpha), "-o", out] + common)
        got.append([x["test_accuracy"] for x in r["students"]])
    print(f"mutual learning {pair[0]} + {pair[1]}, T={a.mutual_temperature}, alpha={a.mutual_alpha}, seeds {a.seeds}")
    for i, n in enumerate(pair):
        mm, ms = statistics.mean(m[i] for m in got), statistics.mean(solo[n][:len(seeds)])
        per = " ".join(f"{100 * m[i]:.2f}" for m in got)
        print(f"mutual {n:10} {100 * ms:.2f}% alone -> {100 * mm:.2f}% ({100 * (mm - ms):+.2f})   per seed {per}",
              flush=True)

if __name__ == "__main__":
    main()
