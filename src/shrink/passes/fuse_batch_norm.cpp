#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include "shrink/passes/inference_passes.h"

namespace shrink::passes {
namespace {

// A BatchNormalization that normalises with its running statistics.
bool is_inference_bn(const ir::Graph& g, const ir::Node& bn) {
  if (bn.op_type != "BatchNormalization" || bn.attrs.get_int("training_mode", 0) != 0) return false;
  if (bn.outputs().size() > 1) return false;
  for (size_t i = 1; i < 5; ++i)
    if (!g.initializer(bn.input(i)->name)) return false;
  return true;
}

at::Tensor tensor_of(const ir::Graph& g, const ir::Value* v) { return g.initializer(v->name)->tensor.detach(); }

// Writes `t` as the node's input `slot`: in place when the initializer is used by
// this node only, else as a new initializer (shared weights stay untouched).
void set_weight(ir::Graph& g, ir::Node* node, size_t slot, const at::Tensor& t, const std::string& base) {
  ir::Value* v = node->input(slot);
  if (v && g.initializer(v->name) && v->users.size() == 1 && !g.is_graph_output(v)) {
    g.set_initializer_tensor(v->name, t);
    return;
  }
  ir::Value* fresh = g.add_initializer(g.unique_name(base), t, ir::InitKind::Parameter);
  g.set_input(node, slot, fresh);
}

// Reshape s to broadcast along `axis` of a tensor of rank `rank`.
at::Tensor along(const at::Tensor& s, int64_t axis, int64_t rank) {
  std::vector<int64_t> shape(rank, 1);
  shape[axis] = -1;
  return s.view(shape);
}

bool fold_into(ir::Graph& g, ir::Node* producer, const ir::Node& bn) {
  const std::string& op = producer->op_type;
  at::Tensor scale = tensor_of(g, bn.input(1)), beta = tensor_of(g, bn.input(2));
  at::Tensor mean = tensor_of(g, bn.input(3)), var = tensor_of(g, bn.input(4));
  at::Tensor s = scale / at::sqrt(var + bn.attrs.get_float("epsilon", 1e-5f));
  const ir::Value* wv = producer->input(1);
  if (!wv || !g.initializer(wv->name)) return false;
  at::Tensor w = tensor_of(g, wv);
  at::Tensor bias = producer->input(2) && g.initializer(producer->input(2)->name)
                        ? tensor_of(g, producer->input(2)) : at::Tensor();
  if (producer->input(2) && !bias.defined()) return false;  // a computed bias: leave alone
  std::string base = producer->name;
  at::Tensor new_w;
  if (op == "Conv") {
    new_w = w * along(s, 0, w.dim());
  } else if (op == "ConvTranspose") {
    int64_t groups = producer->attrs.get_int("group", 1);
    std::vector<int64_t> grouped = {groups, w.size(0) / groups, w.size(1)};
    for (int64_t i = 2; i < w.dim(); ++i) grouped.push_back(w.size(i));
    std::vector<int64_t> s_shape(grouped.size(), 1);
    s_shape[0] = groups;
    s_shape[2] = w.size(1);
    new_w = (w.view(grouped) * s.view(s_shape)).view(w.sizes());
  } else if (op == "Gemm" || op == "MatMul") {
    if (producer->attrs.get_int("transA", 0) || w.dim() != 2) return false;
    if (bias.defined() && bias.numel() != 1 && bias.numel() != s.size(0)) return false;
    bool trans_b = producer->attrs.get_int("transB", 0) != 0;
    double alpha = producer->attrs.get_float("alpha", 1.0f);
    double beta_c = producer->attrs.get_float("beta", 1.0f);
    new_w = (trans_b ? w * s.view({-1, 1}) : w * s.view({1, -1})) * alpha;
    if (bias.defined()) bias = bias.reshape(-1).expand({s.size(0)}) * beta_c;
    producer->attrs.erase("alpha");
    producer->attrs.erase("beta");
  } else {
    return false;
  }
  at::Tensor new_b = bias.defined() ? (bias - mean) * s + beta : beta - mean * s;
  set_weight(g, producer, 1, new_w.contiguous(), base + "_weight");
  if (producer->inputs().size() > 2 && producer->input(2)) {
    set_weight(g, producer, 2, new_b.contiguous(), base + "_bias");
  } else {
    ir::Value* b = g.add_initializer(g.unique_name(base + "_bias"), new_b.contiguous(), ir::InitKind::Parameter);
    g.set_input(producer, 2, b);
  }
  if (op == "MatMul") {
    std::vector<ir::Value*> inputs = producer->inputs();
    g.replace_node(producer, "Gemm", inputs, ir::Attributes{});
  }
  return true;
}

bool foldable_producer(const ir::Graph& g, const ir::Node& bn) {
  ir::Value* x = bn.input(0);
  ir::Node* p = x->producer;
  if (!p || x->users.size() != 1 || g.is_graph_output(x)) return false;
  if (p->op_type == "Conv" || p->op_type == "ConvTranspose" || p->op_type == "Gemm") return true;
  // MatMul becomes Gemm: only for a 2-D product with a constant right side.
  return p->op_type == "MatMul" && p->input(0)->type.has_shape && p->input(0)->type.rank() == 2 &&
         g.initializer(p->input(1)->name) && x->type.has_shape && x->type.rank() == 2;
}

}  // namespace

bool fuse_batch_norm(ir::Graph& graph) {
  at::NoGradGuard no_grad;
  std::vector<ir::Node*> bns;
  for (const auto& n : graph.nodes())
    if (is_inference_bn(graph, *n) && foldable_producer(graph, *n)) bns.push_back(n.get());
  bool changed = false;
  for (ir::Node* bn : bns) {
    ir::Node* producer = bn->input(0)->producer;
    if (!fold_into(graph, producer, *bn)) continue;
    // The producer now computes the normalised value: hand BN's output over to it.
    ir::Value* x = bn->input(0);
    ir::Value* y = bn->output(0);
    std::string name = y->name;
    bool was_output = graph.is_graph_output(y);
    graph.replace_all_uses(y, x);
    graph.remove_node(bn);
    if (was_output) graph.rename_value(x, name);
    changed = true;
  }
  if (changed) graph.remove_unused_values();
  return changed;
}

}  // namespace shrink::passes
