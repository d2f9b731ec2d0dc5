#include "shrink/distill/losses.h"

#include <cmath>

#include <ATen/ATen.h>

#include "shrink/core/error.h"

namespace shrink::distill {
namespace {

at::Tensor resize_to(const at::Tensor& x, const at::Tensor& like) {
  if (x.dim() != 4 || (x.size(2) == like.size(2) && x.size(3) == like.size(3))) return x;
  return at::upsample_bilinear2d(x, {like.size(2), like.size(3)}, false);
}

at::Tensor pairwise_distances(const at::Tensor& e) {
  at::Tensor sq = e.pow(2).sum(1);
  // sqrt(x + eps) keeps the gradient finite where two samples coincide (dead units give
  // identical logits), which a clamped sqrt does not: it reaches 1/(2 sqrt(1e-12)) and overflows.
  at::Tensor d = ((sq.unsqueeze(1) + sq.unsqueeze(0) - 2 * e.mm(e.t())).clamp_min(0) + 1e-8).sqrt();
  return d * (1 - at::eye(e.size(0), e.options()));  // zero diagonal
}

at::Tensor normalized_distances(const at::Tensor& e) {
  at::Tensor d = pairwise_distances(e);
  at::Tensor positive = d.gt(0);
  at::Tensor mean = d.masked_select(positive).mean();
  return d / mean;
}

at::Tensor triplet_angles(const at::Tensor& e) {
  at::Tensor diff = e.unsqueeze(0) - e.unsqueeze(1);  // [B, B, D]
  // sqrt(|d|^2 + eps) rather than a clamped norm: the norm's gradient is 0/0 on the zero
  // diagonal and overflows for coinciding samples.
  at::Tensor unit = diff / (diff.pow(2).sum(2, true) + 1e-8).sqrt();
  return at::bmm(unit, unit.transpose(1, 2)).reshape({-1});
}

}  // namespace

at::Tensor standardize_logits(const at::Tensor& logits) {
  return (logits - logits.mean(1, true)) / (logits.std(1, /*unbiased=*/true, /*keepdim=*/true) + 1e-7);
}

at::Tensor soft_targets(const std::vector<at::Tensor>& teacher_logits, const std::vector<double>& weights,
                        double temperature, bool standardize) {
  SHRINK_CHECK(!teacher_logits.empty() && teacher_logits.size() == weights.size(), "one weight per teacher");
  at::Tensor p;
  for (size_t i = 0; i < teacher_logits.size(); ++i) {
    at::Tensor t = teacher_logits[i].detach().to(at::kFloat);
    if (standardize) t = standardize_logits(t);
    at::Tensor q = at::softmax(t / temperature, 1) * weights[i];
    p = p.defined() ? p + q : q;
  }
  return p;
}

at::Tensor kd_loss(const at::Tensor& student_logits, const at::Tensor& targets, const at::Tensor& labels,
                   double temperature, double alpha, bool standardize) {
  at::Tensor log_p =
      at::log_softmax((standardize ? standardize_logits(student_logits) : student_logits) / temperature, 1);
  // KL(targets || p) with batch-mean reduction, as torch.nn.functional.kl_div(..., 'batchmean').
  at::Tensor kl = (at::xlogy(targets, targets) - targets * log_p).sum() / student_logits.size(0);
  at::Tensor loss = kl * (alpha * temperature * temperature);
  if (alpha < 1.0) loss = loss + (1.0 - alpha) * at::cross_entropy_loss(student_logits, labels);
  return loss;
}

int64_t token_grid(int64_t tokens) {
  for (int64_t t : {tokens, tokens - 1}) {  // all tokens, or all but a leading class token
    auto side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(std::max<int64_t>(t, 0)))));
    if (t > 0 && side * side == t) return side;
  }
  return 0;
}

namespace {

// Tokens [N, T, C] as a feature map [N, C, h, w]: a leading class token dropped when T - 1
// (not T) is a square, the rest in row-major patch order (as a ViT's patch embedding
// flattens them).
at::Tensor tokens_to_map(const at::Tensor& x) {
  const int64_t side = token_grid(x.size(1));
  SHRINK_CHECK(side > 0, "hint: ", x.size(1), " tokens are not a square grid (with or without a class token)");
  at::Tensor patches = x.narrow(1, x.size(1) - side * side, side * side);
  return patches.transpose(1, 2).reshape({x.size(0), x.size(2), side, side});
}

// Tokens of two models: a leading class token dropped from the longer sequence when it is
// one token longer.
std::pair<at::Tensor, at::Tensor> aligned_tokens(const at::Tensor& a, const at::Tensor& b) {
  if (a.size(1) == b.size(1) + 1) return {a.narrow(1, 1, b.size(1)), b};
  if (b.size(1) == a.size(1) + 1) return {a, b.narrow(1, 1, a.size(1))};
  return {a, b};
}

}  // namespace

at::Tensor hint_loss(const at::Tensor& student_value, const at::Tensor& teacher_value) {
  at::Tensor student = student_value, teacher = teacher_value;
  // Between a transformer's tokens and a CNN's feature map, both as maps; between two
  // transformers, token by token.
  if (student.dim() == 3 && teacher.dim() == 4) student = tokens_to_map(student);
  if (student.dim() == 4 && teacher.dim() == 3) {
    teacher = tokens_to_map(teacher);
    if (student.size(2) != teacher.size(2) || student.size(3) != teacher.size(3))
      student = at::adaptive_avg_pool2d(student, {teacher.size(2), teacher.size(3)});
  }
  if (student.dim() == 3 && teacher.dim() == 3) std::tie(student, teacher) = aligned_tokens(student, teacher);
  at::Tensor s = resize_to(student, teacher);
  SHRINK_CHECK(s.sizes() == teacher.sizes(), "hint: student value ", s.sizes(), " does not match the teacher's ",
               teacher.sizes());
  return at::mse_loss(s, teacher.detach());
}

at::Tensor attention_loss(const at::Tensor& student, const at::Tensor& teacher) {
  SHRINK_CHECK(student.dim() == 4 && teacher.dim() == 4, "attention transfer needs [N, C, H, W] values");
  auto map = [](const at::Tensor& x, const at::Tensor& like) {
    at::Tensor a = resize_to(x.pow(2).mean(1, true), like);
    a = a.reshape({x.size(0), -1});
    return a / a.norm(2, {1}, true).clamp_min(1e-12);
  };
  at::Tensor t = teacher.detach();
  return (map(student, t) - map(t, t)).pow(2).mean();
}

at::Tensor rkd_distance_loss(const at::Tensor& student, const at::Tensor& teacher) {
  at::Tensor t = normalized_distances(teacher.detach().reshape({teacher.size(0), -1}));
  at::Tensor s = normalized_distances(student.reshape({student.size(0), -1}));
  return at::smooth_l1_loss(s, t);
}

at::Tensor rkd_angle_loss(const at::Tensor& student, const at::Tensor& teacher) {
  at::Tensor t = triplet_angles(teacher.detach().reshape({teacher.size(0), -1}));
  at::Tensor s = triplet_angles(student.reshape({student.size(0), -1}));
  return at::smooth_l1_loss(s, t);
}

}  // namespace shrink::distill
