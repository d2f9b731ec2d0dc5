// Cross-layer equalization (Nagel et al. 2019, "Data-Free Quantization"): for two layers in a
// row, L1 (Conv, grouped too, or Gemm) -> optional Relu -> L2 (Conv with groups 1, depthwise Conv, or
// Gemm), with L1's output read by nothing else, output channel i of L1 is divided by
// s_i = sqrt(r1_i / r2_i) and input channel i of L2 multiplied by it, where r1_i and r2_i
// are the channel's largest |weight| in L1 and L2. ReLU(x / s) = ReLU(x) / s, so the float
// function is unchanged, and both layers' per-channel ranges become sqrt(r1_i * r2_i):
// one scale per tensor then fits every channel better. Clip (ReLU6) is not scale
// equivariant, so such pairs are left alone. Sweeps repeat until the scales settle.
#pragma once
#include <string>
#include <vector>

#include "shrink/ir/graph.h"

namespace shrink::quantize {

// Returns the (L1, L2) node pairs equalized.
std::vector<std::pair<std::string, std::string>> equalize_layers(ir::Graph& g, int max_sweeps = 20);

}  // namespace shrink::quantize
