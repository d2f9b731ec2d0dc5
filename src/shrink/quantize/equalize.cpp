#include "shrink/quantize/equalize.h"

#include <ATen/ATen.h>

namespace shrink::quantize {
namespace {

ir::Initializer* param(ir::Graph& g, const ir::Value* v) {
  ir::Initializer* i = v ? g.initializer(v->name) : nullptr;
  return i && i->tensor.is_floating_point() && v->users.size() == 1 ? i : nullptr;
}

// The axes of a layer's weight holding its output and its input channels (-1: unsupported).
std::pair<int64_t, int64_t> channel_axes(const ir::Node& n) {
  if (n.op_type == "Conv") return {0, 1};
  if (n.op_type == "Gemm" && n.attrs.get_int("transA", 0) == 0)
    return n.attrs.get_int("transB", 0) ? std::pair<int64_t, int64_t>{0, 1} : std::pair<int64_t, int64_t>{1, 0};
  return {-1, -1};
}

struct Pair {
  ir::Node *first, *second;
  bool depthwise;  // second is a depthwise Conv: its filter i reads channel i alone
};

std::vector<Pair> find_pairs(ir::Graph& g) {
  std::vector<Pair> pairs;
  for (const auto& node : g.nodes()) {
    ir::Node* a = node.get();
    if (channel_axes(*a).first < 0 || !param(g, a->input(1))) continue;  // any conv: output channel i is filter i
    if (a->input(2) && !param(g, a->input(2))) continue;
    ir::Value* out = a->output(0);
    if (g.is_graph_output(out) || out->users.size() != 1) continue;
    ir::Node* b = out->users[0];
    if (b->op_type == "Relu") {
      out = b->output(0);
      if (g.is_graph_output(out) || out->users.size() != 1) continue;
      b = out->users[0];
    }
    if (b->input(0) != out || channel_axes(*b).first < 0 || !param(g, b->input(1))) continue;
    if (a->op_type != b->op_type) continue;  // Conv -> Gemm goes through a Flatten: channels move
    int64_t channels = g.initializer(a->input(1)->name)->tensor.size(channel_axes(*a).first);
    bool depthwise = false;
    if (b->op_type == "Conv") {
      int64_t groups = b->attrs.get_int("group", 1);
      const at::Tensor& w2 = g.initializer(b->input(1)->name)->tensor;
      depthwise = groups == channels && groups > 1 && w2.size(1) == 1 && w2.size(0) == channels;
      if (groups != 1 && !depthwise) continue;
    }
    pairs.push_back({a, b, depthwise});
  }
  return pairs;
}

// Largest |w| per channel along `axis`.
at::Tensor channel_range(const at::Tensor& w, int64_t axis) {
  return w.detach().abs().movedim(axis, 0).reshape({w.size(axis), -1}).amax(1);
}

at::Tensor along(const at::Tensor& s, int64_t axis, int64_t rank) {
  std::vector<int64_t> shape(static_cast<size_t>(rank), 1);
  shape[static_cast<size_t>(axis)] = s.numel();
  return s.reshape(shape);
}

}  // namespace

std::vector<std::pair<std::string, std::string>> equalize_layers(ir::Graph& g, int max_sweeps) {
  std::vector<Pair> pairs = find_pairs(g);
  for (int sweep = 0; sweep < max_sweeps; ++sweep) {
    double moved = 0;
    for (const Pair& p : pairs) {
      ir::Initializer* w1 = g.initializer(p.first->input(1)->name);
      ir::Initializer* w2 = g.initializer(p.second->input(1)->name);
      auto [out1, in1] = channel_axes(*p.first);
      auto [out2, in2] = channel_axes(*p.second);
      int64_t axis2 = p.depthwise ? out2 : in2;
      at::Tensor r1 = channel_range(w1->tensor, out1), r2 = channel_range(w2->tensor, axis2);
      at::Tensor s = at::sqrt(r1 / r2);
      s = at::where((r1 > 0) & (r2 > 0) & at::isfinite(s), s, at::ones_like(s));
      moved = std::max(moved, (s - 1).abs().max().item<double>());
      at::NoGradGuard no_grad;
      w1->tensor.div_(along(s, out1, w1->tensor.dim()));
      if (p.first->input(2)) g.initializer(p.first->input(2)->name)->tensor.div_(s);
      w2->tensor.mul_(along(s, axis2, w2->tensor.dim()));  // depthwise: filter i reads channel i
    }
    if (moved < 1e-6) break;
  }
  std::vector<std::pair<std::string, std::string>> names;
  for (const Pair& p : pairs) names.push_back({p.first->name, p.second->name});
  return names;
}

}  // namespace shrink::quantize
