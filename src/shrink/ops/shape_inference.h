#pragma once
#include "shrink/ir/graph.h"

namespace shrink::ops {

// Infers every node output's type in order. A declared shape (from the ONNX file)
// that contradicts the inferred one is an error naming the node; unknown extents
// are filled from whichever side knows them.
void infer_shapes(ir::Graph& graph);
// The same for one node (its inputs' types must be known).
void infer_node_types(const ir::Graph& graph, ir::Node& node);

// Structure, registered ops and shapes: re-infers and compares without changing
// the graph. Run after every pass in tests.
void verify_graph(const ir::Graph& graph);

}  // namespace shrink::ops
