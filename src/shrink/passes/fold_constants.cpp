#include "shrink/passes/fold_constants.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include "shrink/core/error.h"
#include "shrink/ops/registry.h"
#include "shrink/ops/shape_inference.h"
#include "shrink/passes/inference_passes.h"

namespace shrink::passes {
namespace {

bool is_constant(const ir::Graph& g, const ir::Value* v) {
  const ir::Initializer* init = v ? g.initializer(v->name) : nullptr;
  return init && init->kind == ir::InitKind::Constant;
}

bool foldable(const ir::Graph& g, const ir::Node& node, const ops::OpDef& def) {
  if (!def.deterministic || !def.foldable || node.outputs().empty()) return false;
  if (node.op_type == "Shape" || node.op_type == "Size")
    return node.input(0)->type.is_static() || is_constant(g, node.input(0));
  for (const ir::Value* in : node.inputs())
    if (in && !is_constant(g, in)) return false;
  return true;
}

std::vector<at::Tensor> evaluate(const ir::Graph& g, const ir::Node& node, const ops::OpDef& def) {
  ops::Tensors args;
  for (const ir::Value* in : node.inputs()) {
    if (!in) {
      args.emplace_back();
    } else if (is_constant(g, in)) {
      args.push_back(g.initializer(in->name)->tensor);
    } else {  // Shape/Size only read the extents: a meta tensor has them and no data
      args.push_back(at::empty(in->type.dims, at::TensorOptions().dtype(in->type.dtype).device(at::kMeta)));
    }
  }
  at::NoGradGuard no_grad;
  return def.make_kernel(node)(ops::KernelContext{}, args);
}

}  // namespace

bool fold_node(ir::Graph& graph, ir::Node* node, int64_t max_elements, const ops::DeclaredTypes* declared) {
  ops::infer_node_types(graph, *node, declared);
  const ops::OpDef& def = ops::OpRegistry::instance().get(*node);
  if (!foldable(graph, *node, def)) return false;
  for (const ir::Value* out : node->outputs())
    if (out && (!out->type.is_static() || out->type.numel() > max_elements)) return false;
  std::vector<at::Tensor> values = evaluate(graph, *node, def);
  std::vector<std::pair<ir::Value*, std::string>> renames;
  for (size_t i = 0; i < node->outputs().size(); ++i) {
    ir::Value* out = node->outputs()[i];
    if (!out) continue;
    ir::Value* c = graph.add_initializer(graph.unique_name(out->name + "_folded"), values.at(i).contiguous(),
                                         ir::InitKind::Constant);
    graph.replace_all_uses(out, c);
    renames.emplace_back(c, out->name);
  }
  graph.remove_node(node);
  for (auto& [value, name] : renames) graph.rename_value(value, name);
  return true;
}

size_t fold_constants(ir::Graph& graph, int64_t max_elements, const ops::DeclaredTypes* declared,
                      const std::set<const ir::Node*>* keep) {
  std::vector<ir::Node*> order;
  for (const auto& n : graph.nodes())
    if (!keep || !keep->count(n.get())) order.push_back(n.get());
  size_t folded = 0;
  for (ir::Node* node : order) folded += fold_node(graph, node, max_elements, declared);
  // Shape arithmetic that does not depend on the batch (or any symbol): its values
  // become constants and the Shape -> Gather -> ... chains that computed them go.
  std::vector<std::pair<std::string, std::string>> renames;  // folded name -> original
  for (auto& [v, data] : ops::symbol_free_values(graph)) {
    ir::Value* value = const_cast<ir::Value*>(v);
    if (graph.is_graph_output(value) || value->users.empty() || (keep && keep->count(value->producer))) continue;
    ir::Value* c = graph.add_initializer(graph.unique_name(value->name + "_folded"), data.clone(),
                                         ir::InitKind::Constant);
    graph.replace_all_uses(value, c);
    renames.emplace_back(c->name, value->name);
    ++folded;
  }
  if (!renames.empty()) {
    eliminate_dead_code(graph);  // may drop folded values only dead nodes read
    for (auto& [from, name] : renames)
      if (ir::Value* value = graph.find_value(from); value && !graph.find_value(name)) graph.rename_value(value, name);
  }
  // The walk above typed each node alone; the graph's symbolic extents come back here.
  ops::infer_shapes(graph, declared);
  return folded;
}

}  // namespace shrink::passes
