// fuse_conv: every float 2-D Conv becomes a FusedConv of the ai.shrink domain (oneDNN on
// channels-last activations, ops/dnnl_kernels.h) that also takes the ops after it, in
// order, as oneDNN post-ops: Relu, Clip with constant bounds (ReLU6), HardSwish, SiLU
// (Mul(x, Sigmoid(x))), Sigmoid, and one residual Add of a value of the same shape, as
// ONNX Runtime's Conv fusions and MLAS's NCHWc kernels do (Conv + BatchNorm is folded
// before). Only the inference pipeline runs it (never exported); `--backend aten` leaves it
// out.
#include <cmath>

#include "shrink/ops/window.h"
#include "shrink/passes/inference_passes.h"
#include "shrink/passes/match.h"

namespace shrink::passes {
namespace {

// The one standard-domain node reading v, when v is not a graph output.
ir::Node* standard_user(const ir::Graph& g, const ir::Value* v) {
  ir::Node* u = only_user(g, v);
  return u && u->domain.empty() ? u : nullptr;
}

// Clip's bounds from attributes (opset < 11) or constant inputs; false if not constant.
bool clip_bounds(const ir::Graph& g, const ir::Node& n, float& lo, float& hi) {
  lo = -INFINITY, hi = INFINITY;
  if (n.attrs.has("min") || n.attrs.has("max")) {
    lo = n.attrs.get_float("min", lo);
    hi = n.attrs.get_float("max", hi);
    return true;
  }
  for (size_t i = 1; i <= 2; ++i) {
    if (i >= n.inputs().size() || !n.input(i)) continue;
    const at::Tensor* t = constant(g, n.input(i));
    if (!t || t->numel() != 1) return false;
    (i == 1 ? lo : hi) = t->item<float>();
  }
  return true;
}

bool same_type(const ir::TensorType& a, const ir::TensorType& b) {
  if (!a.has_shape || !b.has_shape || a.dims != b.dims || a.dtype != b.dtype) return false;
  for (size_t i = 0; i < a.dims.size(); ++i)
    if (a.dims[i] < 0 && (i >= a.dim_names.size() || i >= b.dim_names.size() || a.dim_names[i].empty() ||
                          a.dim_names[i] != b.dim_names[i]))
      return false;
  return true;
}

}  // namespace

bool fuse_conv(ir::Graph& graph) {
  std::vector<ir::Node*> convs;
  for (const auto& n : graph.nodes())
    if (n->op_type == "Conv" && n->domain.empty()) convs.push_back(n.get());
  bool changed = false;
  for (ir::Node* conv : convs) {
    ir::Value* x = conv->input(0);
    const at::Tensor* w = constant(graph, conv->input(1));
    if (!w || w->dim() != 4 || w->scalar_type() != at::kFloat || x->type.dtype != at::kFloat || !x->type.has_shape ||
        x->type.rank() != 4 || x->type.dims[1] < 0)
      continue;
    if (conv->inputs().size() > 2 && conv->input(2) && !constant(graph, conv->input(2))) continue;
    ops::Window win = ops::read_window(conv->attrs, {w->size(2), w->size(3)});
    if (win.same()) {  // SAME_UPPER / LOWER: resolved when the input extents are known
      if (x->type.dims[2] < 0 || x->type.dims[3] < 0) continue;
      win = win.resolved({x->type.dims[2], x->type.dims[3]});
    }
    ir::Attributes a;
    a.set("kernel_shape", std::vector<int64_t>{w->size(2), w->size(3)});
    a.set("strides", win.strides);
    a.set("dilations", win.dilations);
    a.set("pads", std::vector<int64_t>{win.pads_begin[0], win.pads_begin[1], win.pads_end[0], win.pads_end[1]});
    a.set("group", conv->attrs.get_int("group", 1));
    std::vector<ir::Value*> inputs = {x, conv->input(1), conv->inputs().size() > 2 ? conv->input(2) : nullptr};
    std::string post;
    std::vector<ir::Node*> fused = {conv};
    ir::Value* v = conv->output(0);
    bool summed = false;
    auto add = [&](const char* op) { post += (post.empty() ? "" : ",") + std::string(op); };
    while (true) {
      ir::Node* u = standard_user(graph, v);
      // SiLU: v read by Sigmoid and by Mul(v, Sigmoid(v)).
      if (!u && v->users.size() == 2 && v->users[0] != v->users[1] && !graph.is_graph_output(v)) {
        ir::Node* s = v->users[0]->op_type == "Sigmoid" ? v->users[0] : v->users[1];
        ir::Node* m = s == v->users[0] ? v->users[1] : v->users[0];
        if (s->op_type == "Sigmoid" && s->domain.empty() && m->op_type == "Mul" && m->domain.empty() &&
            standard_user(graph, s->output(0)) == m &&
            ((m->input(0) == v && m->input(1) == s->output(0)) || (m->input(1) == v && m->input(0) == s->output(0)))) {
          add("silu");
          fused.push_back(s);
          fused.push_back(m);
          v = m->output(0);
          continue;
        }
      }
      if (!u) break;
      float lo = 0, hi = 0;
      if (u->op_type == "Relu") {
        add("relu");
      } else if (u->op_type == "Clip" && post.find("clip") == std::string::npos && clip_bounds(graph, *u, lo, hi) &&
                 std::isfinite(lo) && std::isfinite(hi)) {  // one pair of bounds per node
        add("clip");
        a.set("clip_min", lo);
        a.set("clip_max", hi);
      } else if (u->op_type == "HardSwish") {
        add("hardswish");
      } else if (u->op_type == "Sigmoid") {
        add("sigmoid");
      } else if (u->op_type == "Add" && !summed && u->inputs().size() == 2) {
        ir::Value* r = u->input(0) == v ? u->input(1) : u->input(0);
        if (r == v || graph.is_initializer(r) || !same_type(r->type, v->type) || !same_type(u->output(0)->type, v->type))
          break;
        add("sum");
        summed = true;
        inputs.resize(3);
        inputs.push_back(r);
      } else {
        break;
      }
      fused.push_back(u);
      v = u->output(0);
    }
    a.set("post", post);
    ir::Node* last = fused.back();
    ir::Node* k = graph.replace_node(last, "FusedConv", inputs, a);
    k->domain = "ai.shrink";
    for (auto it = fused.rbegin() + 1; it != fused.rend(); ++it) graph.remove_node(*it);
    changed = true;
  }
  return changed;
}

}  // namespace shrink::passes
