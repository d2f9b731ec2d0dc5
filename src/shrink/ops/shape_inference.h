#pragma once
#include <map>

#include "shrink/ir/graph.h"

namespace shrink::ops {

using DeclaredTypes = std::map<std::string, ir::TensorType>;

// Infers every node output's type in order, replacing what was recorded. Where
// `declared` (the types an ONNX file states) names an output, a contradiction is an
// error naming the node, and extents inference cannot know are taken from it.
void infer_shapes(ir::Graph& graph, const DeclaredTypes* declared = nullptr);
// The same for one node (its inputs' types must be known).
void infer_node_types(const ir::Graph& graph, ir::Node& node, const DeclaredTypes* declared = nullptr);

// Structure, registered ops and shapes: re-infers and compares without changing
// the graph. Run after every pass in tests.
void verify_graph(const ir::Graph& graph);

}  // namespace shrink::ops
