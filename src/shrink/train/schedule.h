// Learning-rate schedules, evaluated per optimisation step.
#pragma once
#include <string>
#include <vector>

namespace shrink::train {

struct ScheduleOptions {
  std::string kind = "cosine";    // constant, step, multistep, cosine
  int step_size = 30;             // step: epochs between decays
  std::vector<int> milestones;    // multistep: epochs at which to decay
  double gamma = 0.1;             // decay factor
  double warmup_epochs = 0;       // linear warm-up from 0 over this many epochs
  double min_lr = 0.0;            // cosine floor
};

// LR at a fractional epoch t (epoch + batch / batches) of `total_epochs`:
//   constant: base; step: base * gamma^floor(t / step_size);
//   multistep: base * gamma^(number of milestones <= t);
//   cosine: min + (base - min) * (1 + cos(pi * t / total)) / 2  (Loshchilov & Hutter 2017);
// and during warm-up (t < warmup) base * t / warmup times the schedule.
double learning_rate(const ScheduleOptions& s, double base_lr, double t, int total_epochs);

// Parses "constant", "step", "multistep", "cosine"; error naming the flag otherwise.
void validate_schedule(const ScheduleOptions& s);

}  // namespace shrink::train
