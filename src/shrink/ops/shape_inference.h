// Shape inference over a whole graph, symbolic in the graph inputs' unknown extents.
//
// Every unknown extent of a graph input (the batch, named "N" or whatever the file
// calls it; an unnamed one gets a name of its own) is a symbol. Inference runs the
// graph's shape functions with each symbol set to probe values and propagates the
// contents of small tensors (Shape -> Gather -> Concat -> Reshape and the rest, each
// evaluated by the op's own kernel), so the arithmetic PyTorch emits around shapes
// is followed exactly. An extent is then solved from the probes: a constant, or
// c * (a product of symbols) - "N", "3*N", "N*S" - when every probe agrees with
// that form, and unknown (unnamed) otherwise. Only values of equal size share a name.
// Where a probe is refused by an op (a model that needs an even batch, say) the
// extents fall back to what inference knows without symbols.
#pragma once
#include <map>
#include <unordered_map>

#include "shrink/ir/graph.h"

namespace shrink::ops {

using DeclaredTypes = std::map<std::string, ir::TensorType>;
using ValueTypes = std::unordered_map<const ir::Value*, ir::TensorType>;

// Every node output's type, symbolic extents named in dim_names (empty name: unknown).
// Where `declared` (the types an ONNX file states) names an output, a contradiction is
// an error naming the node, and static extents inference cannot know are taken from it.
ValueTypes symbolic_types(const ir::Graph& graph, const DeclaredTypes* declared = nullptr);

// Node outputs whose contents inference follows and finds the same at every probe of
// the symbols (a static extent read through Shape -> Gather, the bounds of a chunk):
// in graph order, with their contents.
std::vector<std::pair<const ir::Value*, at::Tensor>> symbol_free_values(const ir::Graph& graph);

// symbolic_types, recorded on the graph's values.
void infer_shapes(ir::Graph& graph, const DeclaredTypes* declared = nullptr);
// One node from its inputs' recorded types, without symbols (used while building).
void infer_node_types(const ir::Graph& graph, ir::Node& node, const DeclaredTypes* declared = nullptr);

// Structure, registered ops and shapes: re-infers and compares without changing
// the graph. Run after every pass in tests.
void verify_graph(const ir::Graph& graph);

}  // namespace shrink::ops
