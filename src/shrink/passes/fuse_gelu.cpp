// fuse_gelu: exact GELU as PyTorch exports it below opset 20 (and as the zoo builds it),
//   x -> Div(x, sqrt 2) | Mul(x, 1/sqrt 2) -> Erf -> Add(., 1) -> Mul(x, .) -> Mul(., 0.5)
// or with the half taken first, Mul(Mul(x, 0.5), Add(Erf(..), 1)), becomes one Gelu node
// of the ai.shrink domain (ONNX Runtime's transformer optimizer fuses the same into its
// com.microsoft Gelu). Only the inference pipeline runs it: it is never exported.
#include <cmath>

#include "shrink/passes/inference_passes.h"
#include "shrink/passes/match.h"

namespace shrink::passes {
namespace {

// The value of a scalar float constant (an initializer of one element), if it is one.
bool scalar(const ir::Graph& g, const ir::Value* v, double& out) {
  const ir::Initializer* init = v ? g.initializer(v->name) : nullptr;
  if (!init || init->tensor.numel() != 1 || !init->tensor.is_floating_point()) return false;
  out = init->tensor.item<double>();
  return true;
}

bool near(double a, double b) { return std::abs(a - b) <= 1e-4 * std::abs(b); }

// The other input of a binary node whose input `one` is, if the other is the scalar `want`.
bool binary_with_scalar(const ir::Graph& g, const ir::Node* n, const char* op, double want, ir::Value*& other) {
  if (!n || n->op_type != op || !n->domain.empty() || n->inputs().size() != 2) return false;
  double c = 0;
  for (int i : {0, 1})
    if (scalar(g, n->input(1 - i), c) && near(c, want)) {
      other = n->input(i);
      return true;
    }
  return false;
}

}  // namespace

bool fuse_gelu(ir::Graph& graph) {
  std::vector<ir::Node*> erfs;
  for (const auto& n : graph.nodes())
    if (n->op_type == "Erf" && n->domain.empty()) erfs.push_back(n.get());
  bool changed = false;
  for (ir::Node* erf : erfs) {
    ir::Node* scale = erf->input(0)->producer;
    ir::Value* x = nullptr;
    if (!scale || only_user(graph, scale->output(0)) != erf) continue;
    if (!binary_with_scalar(graph, scale, "Div", std::sqrt(2.0), x) &&
        !binary_with_scalar(graph, scale, "Mul", 1.0 / std::sqrt(2.0), x))
      continue;
    if (scale->op_type == "Div" && scale->input(0) != x) continue;  // sqrt 2 / x is not it
    ir::Node* plus_one = only_user(graph, erf->output(0));
    ir::Value* e = nullptr;
    if (!binary_with_scalar(graph, plus_one, "Add", 1.0, e) || e != erf->output(0)) continue;
    ir::Node* times = only_user(graph, plus_one->output(0));
    if (!times || times->op_type != "Mul" || !times->domain.empty() || times->inputs().size() != 2) continue;
    ir::Value* other = times->input(0) == plus_one->output(0) ? times->input(1) : times->input(0);
    std::vector<ir::Node*> dead = {times, plus_one, erf, scale};
    ir::Node* last = nullptr;  // the node whose output is the GELU
    ir::Value* half_of = nullptr;
    if (other == x) {  // x * (1 + erf) * 0.5
      ir::Node* half = only_user(graph, times->output(0));
      ir::Value* t = nullptr;
      if (!binary_with_scalar(graph, half, "Mul", 0.5, t) || t != times->output(0)) continue;
      last = half;
    } else if (other->producer && binary_with_scalar(graph, other->producer, "Mul", 0.5, half_of) && half_of == x &&
               only_user(graph, other) == times) {  // (x * 0.5) * (1 + erf)
      last = times;
      dead.push_back(other->producer);
    } else {
      continue;
    }
    if (x->type.has_shape && last->output(0)->type.has_shape && x->type.dims != last->output(0)->type.dims) continue;
    graph.replace_node(last, "Gelu", {x}, {})->domain = "ai.shrink";
    for (ir::Node* n : dead)
      if (n != last) graph.remove_node(n);
    changed = true;
  }
  return changed;
}

}  // namespace shrink::passes
