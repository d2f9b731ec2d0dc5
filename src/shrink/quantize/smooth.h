// SmoothQuant (Xiao et al. 2023, "SmoothQuant: Accurate and Efficient Post-Training
// Quantization for Large Language Models"): transformer activations have a few channels
// far larger than the rest, so one int8 scale per tensor wastes most of its codes on them.
// Each channel j of a LayerNormalization's output that feeds only linear layers (the
// Q/K/V projections, the first MLP layer) is divided by
//   s_j = max|X_j|^alpha / max|W_j|^(1 - alpha)
// (max|X_j| over the calibration batches, max|W_j| over the weights' row j of every layer
// reading it) and row j of each of those weights multiplied by it: the LayerNorm's scale
// and bias absorb the division, so the float function is unchanged and the difficulty
// moves from the activations into the weights (alpha 0.5 balances them; 0.8-0.9 for larger
// outliers). The reference implementation smooths the same pairs (smooth_lm: attention and
// FFN LayerNorms with the linear layers after them).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "shrink/ir/graph.h"

namespace shrink::quantize {

struct SmoothedNorm {
  std::string norm;                 // the LayerNormalization node
  std::vector<std::string> layers;  // the MatMul / Gemm nodes reading it
  double min_scale = 1, max_scale = 1;
  double act_range_before = 0, act_range_after = 0;  // max over channels of max|X_j|
};

// Smooths every LayerNormalization -> {MatMul, Gemm} group of `g` in place with the
// activation ranges of `calibration`'s batches (graph inputs; false when done). alpha in
// [0, 1]. Groups whose norm's output also feeds other ops, or whose weights or norm
// parameters are shared with other nodes, are left alone.
std::vector<SmoothedNorm> smooth_activations(ir::Graph& g, double alpha,
                                             const std::function<bool(std::vector<at::Tensor>&)>& calibration);

}  // namespace shrink::quantize
