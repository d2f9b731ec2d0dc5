#pragma once
#include <cstddef>
#include <set>

#include "shrink/ir/graph.h"
#include "shrink/ops/shape_inference.h"

namespace shrink::passes {

// Evaluates every deterministic node whose inputs are all constants (never
// trained parameters), and every Shape/Size of a statically shaped value, and
// replaces it by a constant initializer of the same name. Shapes are re-inferred
// node by node on the way, so Shape -> Gather -> Unsqueeze -> Concat -> Reshape
// chains collapse in one sweep. Results larger than max_elements stay as nodes.
// Returns the number of nodes folded.
// `declared` passes an ONNX file's stated types through to shape inference; nodes in
// `keep` (and the values they make) stay as they are.
size_t fold_constants(ir::Graph& graph, int64_t max_elements = int64_t{1} << 22,
                      const ops::DeclaredTypes* declared = nullptr, const std::set<const ir::Node*>* keep = nullptr);

// Folds one node the same way, if all its inputs are constants and its outputs are
// typed with at most max_elements each; returns whether it did. The node is gone then.
bool fold_node(ir::Graph& graph, ir::Node* node, int64_t max_elements, const ops::DeclaredTypes* declared = nullptr);

}  // namespace shrink::passes
