// Weight-only 4-bit linear layers: y = x W (+ b) with W stored as `quantize --mode
// weight-only --bits 4` writes it (quantize/quantize.h): per group of G rows of the [K, N]
// weight, codes q in 0..15 with W = (q - 8) * scale, packed two per byte as
// [K/G, G/2, N] uint8 (the group's first half in the low nibbles, its second half in the
// high ones) and scale [K/G, 1, N] float.
//
// For a few rows (a batch of 1 to 16 vectors: the decode step of a language model, one
// image's features) the product is bound by reading the weights; the kernel reads the
// packed bytes (1/8 of the float weight) and unpacks them in registers (AVX-512), so it
// beats the float product on the same weights. More rows: the weight is unpacked once per
// call into float and multiplied by oneDNN's sgemm.
#pragma once
#include <ATen/ATen.h>

namespace shrink::ops {

// The kernel's layout of the weights: 64 output columns at a time, each block's codes one
// contiguous stream ([N/64, K/G, G/2, 64] bytes, zero-padded) and its scales
// [N/64, K/G, 64]. Made once per weight (the Int4MatMul op caches it).
struct Int4Blocks {
  at::Tensor codes, scales;
  at::Tensor dense;  // the float [K, N] weight for calls of many rows, once one came (or undefined)
};
Int4Blocks int4_blocks(const at::Tensor& packed, const at::Tensor& scale);

// x: float [..., K]; packed: uint8 [K/G, G/2, N]; scale: float [K/G, 1, N]; bias: [N] or
// undefined; blocks: int4_blocks(packed, scale), or null to make them here. Returns float
// [..., N].
at::Tensor int4_linear(const at::Tensor& x, const at::Tensor& packed, const at::Tensor& scale, const at::Tensor& bias,
                       const Int4Blocks* blocks = nullptr);

// The float [K, N] weight the packed form stands for.
at::Tensor int4_unpack(const at::Tensor& packed, const at::Tensor& scale);

// Rows up to which int4_linear runs its own kernel (where the CPU has AVX-512). Above it
// the product is bound by arithmetic, not by reading the weights: the float weight
// (blocks->dense when given, kept by the op after the first such call, as ONNX Runtime
// keeps the folded weight) goes to oneDNN's sgemm.
constexpr int64_t kInt4KernelRows = 2;

}  // namespace shrink::ops
