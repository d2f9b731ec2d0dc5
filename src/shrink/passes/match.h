// Small matching helpers the rewrite passes share.
#pragma once
#include <ATen/core/Tensor.h>

#include "shrink/ir/graph.h"

namespace shrink::passes {

// The tensor of an initializer, or nullptr when v is not one.
inline const at::Tensor* constant(const ir::Graph& g, const ir::Value* v) {
  const ir::Initializer* init = v ? g.initializer(v->name) : nullptr;
  return init ? &init->tensor : nullptr;
}

// The single node using v, if v has exactly one use and is not a graph output.
inline ir::Node* only_user(const ir::Graph& g, const ir::Value* v) {
  return v->users.size() == 1 && !g.is_graph_output(v) ? v->users[0] : nullptr;
}

}  // namespace shrink::passes
