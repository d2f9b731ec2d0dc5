#include "shrink/passes/inference_passes.h"

namespace shrink::passes {
namespace {

bool is_initializer_2d(const ir::Graph& g, const ir::Value* v) {
  const ir::Initializer* init = v ? g.initializer(v->name) : nullptr;
  return init && init->tensor.dim() == 2 && init->tensor.is_floating_point();
}

}  // namespace

bool canonicalize_gemm(ir::Graph& graph) {
  std::vector<ir::Node*> matmuls;
  for (const auto& n : graph.nodes())
    if (n->op_type == "MatMul") matmuls.push_back(n.get());
  bool changed = false;
  for (ir::Node* mm : matmuls) {
    ir::Value* a = mm->input(0);
    ir::Value* b = mm->input(1);
    ir::Value* y = mm->output(0);
    if (!a->type.has_shape || a->type.rank() != 2 || !is_initializer_2d(graph, b)) continue;
    if (y->users.size() != 1 || graph.is_graph_output(y) || y->users[0]->op_type != "Add") continue;
    ir::Node* add = y->users[0];
    ir::Value* c = add->input(0) == y ? add->input(1) : add->input(0);
    const ir::Initializer* c_init = graph.initializer(c->name);
    int64_t n = b->type.dims[1];
    if (!c_init || !c_init->tensor.is_floating_point() || c_init->tensor.numel() != n) continue;
    if (c_init->tensor.dim() > 1 && c_init->tensor.size(-1) != n) continue;  // [1,N] fine, [N,1] not
    if (c_init->tensor.dim() != 1) graph.set_initializer_tensor(c->name, c_init->tensor.detach().reshape({n}));
    graph.replace_node(add, "Gemm", {a, b, c}, {});
    graph.remove_node(mm);
    changed = true;
  }
  return changed;
}

}  // namespace shrink::passes
