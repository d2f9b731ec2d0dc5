// Per-layer and total size and cost of a graph: parameters, non-zeros, bytes and
// multiply-accumulates per sample.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "shrink/ir/graph.h"

namespace shrink::report {

struct LayerStats {
  std::string name, op, output;  // output: type of the first output, "float32[N,64,8,8]"
  int64_t parameters = 0;        // trained weights (initializers of kind Parameter)
  int64_t nonzeros = 0;          // non-zero trained weights
  int64_t bytes = 0;             // all initializer data the node reads first (weights, buffers, constants)
  int64_t macs = 0;              // multiply-accumulates per sample (Conv, ConvTranspose, Gemm, MatMul)
};

struct ModelStats {
  std::vector<LayerStats> layers;
  int64_t parameters = 0, nonzeros = 0, initializer_bytes = 0, macs = 0;
};

ModelStats model_stats(const ir::Graph& graph);

// Multiply-accumulates per sample of one node (0 for ops without a dot product).
int64_t node_macs(const ir::Node& node);

}  // namespace shrink::report
