// Quantization-aware training on a QDQ graph from quantize() (static mode):
// to_fake_quant turns every QuantizeLinear/DequantizeLinear pair and every int8 weight
// into FakeQuant nodes (ai.shrink) over float parameters, so the graph trains with the
// quantization error in its forward pass and a straight-through gradient (clipped to the
// quantization range); with learnable scales, the scales are parameters trained by LSQ
// (Esser et al. 2020, gradient scale 1/sqrt(numel * qmax)). from_fake_quant converts
// back: weights to int8 with their (learned) scales, biases to int32 at s_input * s_weight,
// activations to QuantizeLinear/DequantizeLinear pairs.
#pragma once
#include "shrink/ir/graph.h"

namespace shrink::quantize {

// Returns the number of FakeQuant nodes made.
int to_fake_quant(ir::Graph& g, bool learnable_scales);
void from_fake_quant(ir::Graph& g);

}  // namespace shrink::quantize
