#include "shrink/quantize/smooth.h"

#include <ATen/ATen.h>

#include "shrink/core/error.h"
#include "shrink/exec/session.h"

namespace shrink::quantize {
namespace {

const ir::Initializer* init_of(const ir::Graph& g, const ir::Value* v) { return v ? g.initializer(v->name) : nullptr; }

// A float initializer read by exactly one node input.
bool owned(const ir::Graph& g, const ir::Value* v) {
  const ir::Initializer* init = init_of(g, v);
  return init && init->tensor.is_floating_point() && v->users.size() == 1;
}

// Whether n reads `x` as the data input of a linear layer with a constant weight whose
// input rows are x's channels, and the weight's row axis (0 for MatMul's [K, N] and Gemm's
// B without transB; 1 with transB).
bool linear_reader(const ir::Graph& g, const ir::Node& n, const ir::Value* x, int64_t channels, int64_t& row_axis) {
  if (!n.domain.empty() || n.input(0) != x || n.input(1) == x || !owned(g, n.input(1))) return false;
  const at::Tensor& w = init_of(g, n.input(1))->tensor;
  if (w.dim() != 2) return false;
  if (n.op_type == "MatMul") {
    row_axis = 0;
  } else if (n.op_type == "Gemm") {
    if (n.attrs.get_int("transA", 0) != 0) return false;
    row_axis = n.attrs.get_int("transB", 0) != 0 ? 1 : 0;
  } else {
    return false;
  }
  return w.size(row_axis) == channels;
}

struct Group {
  ir::Node* norm;
  std::vector<std::pair<ir::Node*, int64_t>> layers;  // node, weight row axis
  int64_t channels;
};

std::vector<Group> find_groups(const ir::Graph& g) {
  std::vector<Group> groups;
  for (const auto& node : g.nodes()) {
    ir::Node* n = node.get();
    if (n->op_type != "LayerNormalization" || !n->domain.empty() || n->inputs().size() < 3) continue;
    if (n->attrs.get_int("axis", -1) != -1 && !(n->input(0)->type.has_shape &&
                                                n->attrs.get_int("axis", -1) == n->input(0)->type.rank() - 1))
      continue;  // normalised over the last axis only: the scale and bias are per channel
    if (!owned(g, n->input(1)) || !owned(g, n->input(2))) continue;
    const at::Tensor& scale = init_of(g, n->input(1))->tensor;
    const at::Tensor& bias = init_of(g, n->input(2))->tensor;
    if (scale.dim() != 1 || bias.sizes() != scale.sizes()) continue;
    ir::Value* y = n->output(0);
    if (y->users.empty() || g.is_graph_output(y)) continue;
    Group grp{n, {}, scale.size(0)};
    bool ok = true;
    for (ir::Node* u : y->users) {
      int64_t axis = 0;
      if (!linear_reader(g, *u, y, grp.channels, axis)) {
        ok = false;
        break;
      }
      grp.layers.push_back({u, axis});
    }
    if (ok) groups.push_back(grp);
  }
  return groups;
}

}  // namespace

std::vector<SmoothedNorm> smooth_activations(ir::Graph& g, double alpha,
                                             const std::function<bool(std::vector<at::Tensor>&)>& calibration) {
  SHRINK_CHECK(alpha >= 0 && alpha <= 1, "--smooth: alpha must be in [0, 1], got ", alpha);
  std::vector<Group> groups = find_groups(g);
  if (groups.empty()) return {};
  SHRINK_CHECK(calibration, "--smooth: SmoothQuant needs calibration batches (the activations' ranges)");
  // Per-channel max |x| of each norm's output over the calibration batches.
  exec::SessionOptions so;
  for (const Group& grp : groups) so.taps.push_back(grp.norm->output(0)->name);
  std::vector<at::Tensor> ranges(groups.size());
  int64_t batches = 0;
  {
    exec::Session session(g, so);
    std::vector<at::Tensor> batch;
    while (calibration(batch)) {
      session.run(batch);
      for (size_t i = 0; i < groups.size(); ++i) {
        at::Tensor x = session.tap(i).detach().to(at::kFloat);
        at::Tensor m = x.abs().reshape({-1, groups[i].channels}).amax(0);
        ranges[i] = ranges[i].defined() ? at::maximum(ranges[i], m) : m;
      }
      ++batches;
    }
  }
  SHRINK_CHECK(batches > 0, "--smooth: no calibration batch was given");
  std::vector<SmoothedNorm> out;
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < groups.size(); ++i) {
    const Group& grp = groups[i];
    at::Tensor w_range = at::zeros({grp.channels}, at::kFloat);
    for (const auto& [layer, axis] : grp.layers) {
      const at::Tensor& w = init_of(g, layer->input(1))->tensor;
      w_range = at::maximum(w_range, w.detach().abs().to(at::kFloat).amax(1 - axis));
    }
    at::Tensor a = ranges[i].to(at::kDouble), b = w_range.to(at::kDouble);
    at::Tensor s = (a.pow(alpha) / b.pow(1 - alpha)).clamp_min(1e-5);
    s = at::where((a > 0) & (b > 0), s, at::ones_like(s));  // a dead channel keeps its scale
    at::Tensor sf = s.to(at::kFloat);
    for (int input : {1, 2}) {
      const std::string& name = grp.norm->input(input)->name;
      const at::Tensor& t = g.initializer(name)->tensor;
      g.set_initializer_tensor(name, (t.to(at::kFloat) / sf).to(t.scalar_type()));
    }
    SmoothedNorm r{grp.norm->name, {}, s.min().item<double>(), s.max().item<double>(), a.max().item<double>(),
                   (a / s).max().item<double>()};
    for (const auto& [layer, axis] : grp.layers) {
      const std::string& name = layer->input(1)->name;
      const at::Tensor& w = g.initializer(name)->tensor;
      at::Tensor factor = axis == 0 ? sf.view({-1, 1}) : sf.view({1, -1});
      g.set_initializer_tensor(name, (w.to(at::kFloat) * factor).to(w.scalar_type()));
      r.layers.push_back(layer->name);
    }
    out.push_back(r);
  }
  return out;
}

}  // namespace shrink::quantize
