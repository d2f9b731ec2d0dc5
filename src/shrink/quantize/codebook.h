// Weight sharing: Deep Compression's trained quantization (Han et al., ICLR 2016).
// Each layer's non-zero weights are clustered by 1-D k-means (centroids initialised
// linearly between the layer's smallest and largest weight, which the paper found best)
// into at most 2^bits - 1 values when the layer has pruned zeros (zero is the remaining
// code) and 2^bits when it has none; every weight is replaced by its centroid, and
// pruned zeros stay zero. Optional fine-tuning trains the centroids: after each
// optimizer step, each centroid moves by the sum of its weights' moves (for SGD, the
// gradients of the weights sharing it summed, as in the paper) and the weights are set
// back to their centroids. The export then writes each layer as codes into its codebook
// (onnx/encode.h); the model computes in float.
//
// A layer whose non-zeros already take no more distinct values than the codebook holds
// (an already shared model, or fewer non-zeros than entries) keeps its values exactly:
// its codebook is those values.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "shrink/ir/graph.h"

namespace shrink::quantize {

struct CodebookOptions {
  int bits = 4;  // 2..8
  std::vector<std::string> ops = {"Conv", "ConvTranspose", "Gemm", "MatMul"};
  std::vector<std::string> exclude_nodes;  // left float; their pruned zeros stay zero in fine-tuning
  std::map<std::string, int> layer_bits;   // node name -> bits, overriding `bits` (the paper: conv 8, fc 5)
  int iterations = 50;  // k-means iterations at most (stops when no weight changes cluster)
};

struct CodebookLayer {
  std::string node, op, weight;
  int64_t weights = 0, nonzeros = 0, entries = 0;  // entries: distinct non-zero values now
  int bits = 0;                                     // the codebook's bits (0: not shared)
  double relative_error = 0;  // ||W_shared - W|| / ||W|| at clustering
  std::string note;           // e.g. "kept: 12 distinct values already"; "skipped: ..." when untouched
};

class WeightSharing {
 public:
  // Clusters every selected layer of `g` and writes the shared values into its weights.
  WeightSharing(ir::Graph& g, const CodebookOptions& options);
  // After an optimizer step on `g`'s parameters: the centroid update, then the weights
  // set back to their centroids (zeros stay zero).
  void after_step();
  // Re-reads the centroids from the weights (e.g. after the trainer restored its best
  // epoch) and sets every weight exactly to its centroid.
  void finish();
  const std::vector<CodebookLayer>& layers() const { return layers_; }

 private:
  struct Shared {
    std::string weight;
    at::Tensor positions;  // flat positions of the non-zeros
    at::Tensor codes;      // their centroid index
    at::Tensor centroids;  // float64 [k]
    at::Tensor current;    // the shared values written last, float64 [nnz]
  };
  void write(Shared& s);
  void zero_masked();
  ir::Graph& g_;
  std::vector<Shared> shared_;
  std::vector<std::pair<std::string, at::Tensor>> masked_;  // excluded weights: flat positions of their zeros
  std::vector<CodebookLayer> layers_;
};

}  // namespace shrink::quantize
