#include "shrink/ops/shape_inference.h"

#include "shrink/core/error.h"
#include "shrink/core/limits.h"
#include "shrink/ir/verifier.h"
#include "shrink/ops/registry.h"

namespace shrink::ops {
namespace {

InferContext context_for(const ir::Graph& graph, const ir::Node& node) {
  InferContext ctx{node, {}, {}};
  for (const ir::Value* in : node.inputs()) {
    ctx.inputs.push_back(in ? in->type : ir::TensorType::unknown(at::kFloat));
    const ir::Initializer* init = in ? graph.initializer(in->name) : nullptr;
    ctx.constants.push_back(init && init->kind == ir::InitKind::Constant ? &init->tensor : nullptr);
  }
  return ctx;
}

// Combines what the file declared with what inference found.
ir::TensorType merge(const ir::Node& node, const ir::Value& out, const ir::TensorType& declared,
                     ir::TensorType inferred) {
  if (!declared.has_shape) return inferred;
  if (!inferred.has_shape) {
    ir::TensorType t = declared;
    t.dtype = inferred.dtype;
    return t;
  }
  SHRINK_CHECK(ir::compatible(declared, inferred), node.describe(), ": output '", out.name,
               "' is declared ", declared.to_string(), " but the op gives ", inferred.to_string());
  for (size_t i = 0; i < inferred.dims.size(); ++i)
    if (inferred.dims[i] == ir::kDynamic) inferred.dims[i] = declared.dims[i];
  if (inferred.dim_names.empty()) inferred.dim_names = declared.dim_names;
  return inferred;
}

}  // namespace

void infer_node_types(const ir::Graph& graph, ir::Node& node, const DeclaredTypes* declared) {
  std::vector<ir::TensorType> types = infer_node(node, context_for(graph, node));
  for (size_t i = 0; i < node.outputs().size(); ++i) {
    ir::Value* out = node.outputs()[i];
    if (!out) continue;
    SHRINK_CHECK(i < types.size(), node.describe(), ": has ", node.outputs().size(),
                 " outputs, the op defines ", types.size());
    auto it = declared ? declared->find(out->name) : DeclaredTypes::const_iterator{};
    out->type = declared && it != declared->end() ? merge(node, *out, it->second, types[i]) : types[i];
    // A value the graph would need at batch 1 beyond --max-tensor-bytes is refused
    // here, when the model is read, rather than when a run tries to allocate it.
    if (out->type.has_shape && out->type.dtype != at::ScalarType::Undefined) {
      std::vector<int64_t> dims = out->type.dims;
      for (int64_t& d : dims) d = d < 0 ? 1 : d;
      checked_tensor_bytes(dims, static_cast<int64_t>(c10::elementSize(out->type.dtype)),
                           node.describe() + ": output '" + out->name + "'");
    }
  }
}

void infer_shapes(ir::Graph& graph, const DeclaredTypes* declared) {
  for (const auto& node : graph.nodes()) infer_node_types(graph, *node, declared);
}

void verify_graph(const ir::Graph& graph) {
  ir::verify_structure(graph);
  for (const auto& node : graph.nodes()) {
    std::vector<ir::TensorType> types = infer_node(*node, context_for(graph, *node));
    for (size_t i = 0; i < node->outputs().size(); ++i) {
      const ir::Value* out = node->outputs()[i];
      if (!out) continue;
      SHRINK_CHECK(i < types.size(), node->describe(), ": has too many outputs");
      SHRINK_CHECK(ir::compatible(out->type, types[i]), node->describe(), ": output '", out->name,
                   "' records ", out->type.to_string(), " but inference gives ", types[i].to_string());
    }
  }
}

}  // namespace shrink::ops
