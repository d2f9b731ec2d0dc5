#include "shrink/train/schedule.h"

#include <cmath>

#include "shrink/core/error.h"

namespace shrink::train {

void validate_schedule(const ScheduleOptions& s) {
  SHRINK_CHECK(s.kind == "constant" || s.kind == "step" || s.kind == "multistep" || s.kind == "cosine",
               "--schedule: '", s.kind, "' is not one of constant, step, multistep, cosine");
  SHRINK_CHECK(s.kind != "step" || s.step_size > 0, "--step-size must be positive");
  SHRINK_CHECK(s.warmup_epochs >= 0, "--warmup must not be negative");
}

double learning_rate(const ScheduleOptions& s, double base_lr, double t, int total_epochs) {
  double lr = base_lr;
  if (s.kind == "step") {
    lr = base_lr * std::pow(s.gamma, std::floor(t / s.step_size));
  } else if (s.kind == "multistep") {
    int passed = 0;
    for (int m : s.milestones) passed += t >= m;
    lr = base_lr * std::pow(s.gamma, passed);
  } else if (s.kind == "cosine") {
    double progress = total_epochs > 0 ? std::min(1.0, t / total_epochs) : 1.0;
    lr = s.min_lr + (base_lr - s.min_lr) * 0.5 * (1.0 + std::cos(M_PI * progress));
  }
  if (s.warmup_epochs > 0 && t < s.warmup_epochs) lr *= t / s.warmup_epochs;
  return lr;
}

}  // namespace shrink::train
