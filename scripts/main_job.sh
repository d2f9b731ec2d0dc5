#!/usr/bin/env bash
# The main job: train LeNet-5 on Fashion-MNIST (the embedded default data, from the
# Debian package dataset-fashion-mnist), evaluate it on the full test set, show what
# the model is made of, prune it, quantize the pruned model (int8, and weight sharing), distil it,
# and time it.
set -euo pipefail
cd "$(dirname "$0")/.."
SHRINK="${1:-build/shrink}"
OUT="${SHRINK_DEMO_DIR:-build/demo}"
mkdir -p "$OUT"
echo "== the model zoo (1x28x28 inputs, 10 classes)"
"$SHRINK" zoo
echo "== training LeNet-5 on Fashion-MNIST: 10 epochs, SGD momentum 0.9, cosine LR, seed 0"
"$SHRINK" train --model lenet5 --epochs 10 --lr 0.05 --seed 0 --checkpoint "$OUT/lenet5.ckpt" -o "$OUT/lenet5.onnx"
echo "== evaluating on the 10,000 test images"
"$SHRINK" eval "$OUT/lenet5.onnx"
echo "== what it is made of"
"$SHRINK" info "$OUT/lenet5.onnx"
echo "== pruning 91% of its weights: 4 rounds of global magnitude pruning, 3 fine-tuning epochs each"
"$SHRINK" prune "$OUT/lenet5.onnx" --method global --amount 0.91 --schedule iterative:4 --finetune 3 --lr 0.02 \
  -o "$OUT/lenet5_pruned.onnx"
echo "== quantizing the pruned model to int8 (static, per-channel, 32 calibration batches; QDQ ONNX)"
"$SHRINK" quantize "$OUT/lenet5_pruned.onnx" -o "$OUT/lenet5_pruned.int8.onnx"
echo "== weight sharing on the pruned model: 16-entry codebooks per layer (4 bits), 2 epochs of centroid fine-tuning"
"$SHRINK" quantize "$OUT/lenet5_pruned.onnx" --mode codebook --bits 4 --finetune 2 -o "$OUT/lenet5_pruned.codebook.onnx"
"$SHRINK" info "$OUT/lenet5_pruned.codebook.onnx" | sed -n '/^storage/,/^all tensors/p'
echo "== bytes on disk: dense, pruned, pruned int8, pruned with shared weights"
for f in lenet5 lenet5_pruned lenet5_pruned.int8 lenet5_pruned.codebook; do
  printf '%10d  %s\n' "$(stat -c %s "$OUT/$f.onnx")" "$OUT/$f.onnx"
done
echo "== distilling it into a half-width LeNet-5 (T=2, alpha=0.5, 10 epochs, 1 warm-up), beside the same student trained alone"
"$SHRINK" train --model lenet5 --width 0.5 --epochs 10 --lr 0.05 --warmup 1 --seed 0 -o "$OUT/lenet5_half_alone.onnx"
"$SHRINK" distill --teacher "$OUT/lenet5.onnx" --student lenet5 --width 0.5 --temperature 2 --alpha 0.5 \
  --epochs 10 --lr 0.05 --warmup 1 --seed 0 --cache "$OUT/teacher-cache" -o "$OUT/lenet5_half_distilled.onnx"
echo "== inference speed (batch 64)"
"$SHRINK" convert "$OUT/lenet5.onnx" -o "$OUT/lenet5_inference.onnx" >/dev/null
"$SHRINK" bench "$OUT/lenet5_inference.onnx" --batch 64
