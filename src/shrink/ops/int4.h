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

// x: float [..., K]; packed: uint8 [K/G, G/2, N]; scale: float [K/G, 1, N]; bias: [N] or
// undefined. Returns float [..., N].
at::Tensor int4_linear(const at::Tensor& x, const at::Tensor& packed, const at::Tensor& scale, const at::Tensor& bias);

// The float [K, N] weight the packed form stands for.
at::Tensor int4_unpack(const at::Tensor& packed, const at::Tensor& scale);

// Rows up to which int4_linear runs its own kernel (where the CPU has AVX-512).
constexpr int64_t kInt4KernelRows = 16;

}  // namespace shrink::ops
