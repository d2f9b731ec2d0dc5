#!/usr/bin/env bash
# The main job: train LeNet-5 on Fashion-MNIST (the embedded default data, from the
# Debian package dataset-fashion-mnist), evaluate it on the full test set, show what
# the model is made of, compress it (shrink compress: pruning and weight sharing searched under
# an accuracy budget, with a report), distil it, and time it.
set -euo pipefail
cd "$(dirname "$0")/.."
SHRINK="${1:-build/shrink}"
OUT="${SHRINK_DEMO_DIR:-build/demo}"
mkdir -p "$OUT"
echo "== the model zoo (1x28x28 inputs, 10 classes)"
"$SHRINK" zoo
echo "== training LeNet-5 on Fashion-MNIST: 10 epochs, SGD momentum 0.9, cosine LR, seed 0; 10,000 training images held out for validation"
"$SHRINK" train --model lenet5 --epochs 10 --lr 0.05 --seed 0 --holdout 10000 --checkpoint "$OUT/lenet5.ckpt" -o "$OUT/lenet5.onnx"
echo "== evaluating on the 10,000 test images"
"$SHRINK" eval "$OUT/lenet5.onnx"
echo "== what it is made of"
"$SHRINK" info "$OUT/lenet5.onnx"
echo "== shrink compress: the smallest model within 0.5 points of validation accuracy (global pruning levels with"
echo "   fine-tuning, then 3/4/5-bit weight sharing; every candidate kept; the report is report.html)"
"$SHRINK" compress "$OUT/lenet5.onnx" --max-drop 0.5 --resume -o "$OUT/compress"
"$SHRINK" info "$OUT/compress/model.onnx" | sed -n '/^storage/,/^all tensors/p'
echo "== distilling it into a half-width LeNet-5 (T=2, alpha=0.5, 10 epochs, 1 warm-up), beside the same student trained alone"
"$SHRINK" train --model lenet5 --width 0.5 --epochs 10 --lr 0.05 --warmup 1 --seed 0 -o "$OUT/lenet5_half_alone.onnx"
"$SHRINK" distill --teacher "$OUT/lenet5.onnx" --student lenet5 --width 0.5 --temperature 2 --alpha 0.5 \
  --epochs 10 --lr 0.05 --warmup 1 --seed 0 --cache "$OUT/teacher-cache" -o "$OUT/lenet5_half_distilled.onnx"
echo "== inference speed (batch 64)"
"$SHRINK" convert "$OUT/lenet5.onnx" -o "$OUT/lenet5_inference.onnx" >/dev/null
"$SHRINK" bench "$OUT/lenet5_inference.onnx" --batch 64
