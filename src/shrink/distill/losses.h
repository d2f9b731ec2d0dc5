// Distillation losses, each on a batch (differentiable in the student's tensors; the
// teacher's side is treated as a constant).
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

namespace shrink::distill {

// Soft targets of one or more teachers: sum_i w_i softmax(t_i / T), weights summing to 1.
// With `standardize`, each teacher's logits are first z-scored per sample (logit
// standardization, Sun et al. 2024: the student matches the teacher's ranking and relative
// gaps, not its logit scale).
at::Tensor soft_targets(const std::vector<at::Tensor>& teacher_logits, const std::vector<double>& weights,
                        double temperature, bool standardize = false);

// Per-sample z-score of logits [B, K]: (z - mean) / (std + 1e-7).
at::Tensor standardize_logits(const at::Tensor& logits);

// Hinton et al. 2015: alpha * T^2 * KL(targets || softmax(s / T)) (batch mean)
//                    + (1 - alpha) * CE(s, labels).
// With `standardize`, the KL term sees the student's z-scored logits (the cross-entropy
// the raw ones).
at::Tensor kd_loss(const at::Tensor& student_logits, const at::Tensor& targets, const at::Tensor& labels,
                   double temperature, double alpha, bool standardize = false);

// FitNets hint: mean squared error between the student's adapted value and the teacher's,
// the student's resized (bilinear) to the teacher's spatial size when they differ.
// Values of different layouts meet as feature maps: a transformer's tokens [N, T, C] become
// [N, C, h, w] (h = w = sqrt(T), or sqrt(T - 1) with a leading class token dropped), so a
// ViT student learns from a CNN's feature map and a CNN student from a ViT's tokens (its
// map average-pooled to the token grid); two token sequences are compared token by token
// (a class token dropped from the longer when they differ by one).
at::Tensor hint_loss(const at::Tensor& student, const at::Tensor& teacher);

// The side of the square patch grid of `tokens` tokens (all of them, or all but one class
// token), 0 if neither is a square.
int64_t token_grid(int64_t tokens);

// Attention transfer (Zagoruyko & Komodakis 2017): the mean over channels of the squared
// activations, flattened and L2-normalised per sample; mean squared difference. Maps of
// different sizes are compared at the teacher's size.
at::Tensor attention_loss(const at::Tensor& student, const at::Tensor& teacher);

// Relational KD (Park et al. 2019) on per-sample embeddings [B, D]: pairwise distances
// normalised by their mean, and the angles of all triplets; smooth L1 against the teacher's.
at::Tensor rkd_distance_loss(const at::Tensor& student, const at::Tensor& teacher);
at::Tensor rkd_angle_loss(const at::Tensor& student, const at::Tensor& teacher);

}  // namespace shrink::distill
