// Inference kernels on oneDNN primitives (the library LibTorch links for its mkldnn
// kernels), for the shapes where ATen's CPU kernels are slow. Each primitive is created
// once per shape (and layout) and cached; operands that need a gradient, or are not float32
// CPU tensors, go to ATen, so training is unchanged.
#pragma once
#include <ATen/ATen.h>

namespace shrink::ops {

// softmax (or log-softmax) of x along `axis` (already normalised to [0, x.dim())).
// ATen's softmax over a short last axis, as in attention (64x4x50x50: 0.68 ms on 2
// threads), is 2.7x slower than oneDNN's AVX-512 kernel (0.25 ms).
at::Tensor softmax_inference(const at::Tensor& x, int64_t axis, bool log);

// numpy matmul of operands of which at least one has 3 or more dimensions (the batch
// dimensions broadcast): attention's Q K^T and A V. One oneDNN matmul primitive over the
// whole batch; each matrix row- or column-major (K^T as a transposed view needs no copy).
// at::matmul sends these to a loop of small products: 256 products of 50x16x50 took
// 0.70 ms, the primitive 0.08-0.14 ms.
at::Tensor batched_matmul_inference(const at::Tensor& a, const at::Tensor& b);

}  // namespace shrink::ops
