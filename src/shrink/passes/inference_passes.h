// Rewrites for inference. Each checks cheaply whether a site matches and rewrites
// it; a graph with no matching site is left unchanged (returns false).
#pragma once
#include <set>
#include <string>

#include "shrink/ir/graph.h"

namespace shrink::passes {

// Removes nodes none of whose outputs are used (or are graph outputs), then unused
// initializers.
bool eliminate_dead_code(ir::Graph& graph);

// Identity, and Dropout in inference (no mask consumer, no training_mode input),
// forward their input.
bool remove_identity(ir::Graph& graph);

// Folds an inference BatchNormalization into the Conv, ConvTranspose, Gemm or 2-D
// MatMul (which becomes a Gemm) that feeds it alone:
//   W' = W * s,  b' = (b - mean) * s + beta,  s = scale / sqrt(var + eps)
// per output channel.
bool fuse_batch_norm(ir::Graph& graph);

// MatMul(A[M,K], B[K,N] constant) followed by Add of a constant broadcastable to [N]
// becomes Gemm(A, B, C).
bool canonicalize_gemm(ir::Graph& graph);

// Exact GELU as PyTorch exports it below opset 20 (Div or Mul by sqrt 2, Erf, Add 1, Mul x,
// Mul 0.5, the half in either place) becomes one ai.shrink Gelu node (never exported).
bool fuse_gelu(ir::Graph& graph);

// MatMul / Gemm whose weight the graph unpacks from 4-bit codes (quantize's weight-only
// --bits 4) becomes one ai.shrink Int4MatMul on the packed bytes (ops/int4.h). Runs before
// constant folding (which would unpack the weight into a float constant); never exported.
bool fuse_int4(ir::Graph& graph);

// The nodes that unpack 4-bit weights in the form fuse_int4 matches: the importer leaves
// them unfolded, so the runtime can read the packed bytes and a re-export keeps them.
std::set<const ir::Node*> int4_unpack_nodes(const ir::Graph& graph);

// Float 2-D Conv (+ Relu / Clip / HardSwish / SiLU / Sigmoid, + one residual Add) becomes
// one ai.shrink FusedConv on oneDNN with channels-last activations (ops/dnnl_kernels.h).
bool fuse_conv(ir::Graph& graph);

// The inference pipeline's kernels: "onednn" (the default: fuse_conv runs) or "aten"
// (convolutions one node at a time on ATen); SHRINK_BACKEND sets the default.
void set_inference_backend(const std::string& backend);
const std::string& inference_backend();

// QDQ patterns (QuantizeLinear / DequantizeLinear around Conv, Gemm, MatMul, Add, with a
// fused Relu) become the int8 kernels of ops/int8.h; the weights' remaining
// DequantizeLinear nodes are folded to float. Float graphs are left unchanged.
bool lower_int8(ir::Graph& graph);

}  // namespace shrink::passes
