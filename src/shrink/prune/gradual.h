// Gradual pruning during training with the cubic schedule of Zhu & Gupta 2017 (AGP):
//   s(t) = s_f + (s_i - s_f) * (1 - (t - t0) / (t1 - t0))^3   for t0 <= t <= t1,
// sparsity rising fast at first and levelling off, masks updated every few steps while
// the network keeps training through them.
#pragma once
#include <cstdint>

#include "shrink/ir/graph.h"
#include "shrink/prune/unstructured.h"

namespace shrink::prune {

// The AGP target sparsity at time t (any unit: epochs or steps); s_i before t0, s_f after t1.
double agp_sparsity(double initial, double final, double t0, double t1, double t);

class GradualPruner {
 public:
  // Puts all-ones soft masks on the selected layers of `g` now (before training sessions
  // are built); `o.amount` is the final sparsity, reached at `end_epoch`.
  GradualPruner(ir::Graph& g, UnstructuredOptions o, double start_epoch, double end_epoch, int64_t every_steps);

  // Call after each optimizer step: on every `every_steps`-th step inside the window, and
  // once at its end, raises the masks' sparsity to the schedule's value.
  void after_step(int64_t step, double epoch);

  double sparsity() const;  // current sparsity over the selected layers
  int updates() const { return updates_; }

 private:
  ir::Graph& g_;
  UnstructuredOptions o_;
  double start_, end_;
  int64_t every_;
  bool finished_ = false;
  int updates_ = 0;
};

}  // namespace shrink::prune
