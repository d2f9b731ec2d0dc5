#include "shrink/prune/gradual.h"

#include <algorithm>
#include <cmath>

#include "shrink/core/error.h"

namespace shrink::prune {

double agp_sparsity(double initial, double final, double t0, double t1, double t) {
  if (t <= t0) return initial;
  if (t >= t1) return final;
  double r = 1.0 - (t - t0) / (t1 - t0);
  return final + (initial - final) * r * r * r;
}

GradualPruner::GradualPruner(ir::Graph& g, UnstructuredOptions o, double start_epoch, double end_epoch,
                             int64_t every_steps)
    : g_(g), o_(std::move(o)), start_(start_epoch), end_(end_epoch), every_(every_steps) {
  SHRINK_CHECK(o_.amount >= 0.0 && o_.amount < 1.0, "--amount must be in [0, 1), got ", o_.amount);
  SHRINK_CHECK(end_ > start_ && start_ >= 0, "gradual pruning needs 0 <= start < end epochs, got ", start_, " and ", end_);
  SHRINK_CHECK(every_ >= 1, "gradual pruning: masks must be updated every 1 or more steps, got ", every_);
  o_.soft = true;
  UnstructuredOptions setup = o_;
  setup.amount = 0.0;  // masks in place, nothing pruned yet
  prune_unstructured(g_, setup);
}

double GradualPruner::sparsity() const {
  int64_t total = 0, alive = 0;
  for (const auto& w : prunable_weights(g_)) {
    if (w.mask.empty()) continue;
    bool selected = (o_.layers.empty() || std::count(o_.layers.begin(), o_.layers.end(), w.node->name)) &&
                    !std::count(o_.ignored.begin(), o_.ignored.end(), w.node->name);
    if (!selected) continue;
    at::Tensor m = alive_mask(g_, w);
    total += m.numel();
    alive += m.sum().item<int64_t>();
  }
  return total ? 1.0 - static_cast<double>(alive) / total : 0.0;
}

void GradualPruner::after_step(int64_t step, double epoch) {
  if (finished_ || epoch < start_) return;
  bool last = epoch >= end_;
  if (!last && step % every_ != 0) return;
  double target = agp_sparsity(0.0, o_.amount, start_, end_, epoch);
  double current = sparsity();
  if (target > current) {
    UnstructuredOptions step_o = o_;
    step_o.amount = 1.0 - (1.0 - target) / (1.0 - current);  // of what is alive
    prune_unstructured(g_, step_o);
    ++updates_;
  }
  finished_ = last;
}

}  // namespace shrink::prune
