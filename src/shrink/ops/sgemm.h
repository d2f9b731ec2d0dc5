// Float matrix products through oneDNN's sgemm (the library LibTorch itself links for its
// mkldnn kernels). Debian's LibTorch sends at::mm to OpenBLAS built for Haswell (AVX2);
// oneDNN picks its kernel for the CPU it runs on (AVX-512 here) and is 1.8x faster on one
// thread for the shapes of a small network's layers (128x784x128: 169 vs 97 GFLOP/s),
// 1.7-2.3x on two. Autograd-aware: the backward pass is built from the same product, so
// gradients of gradients work too.
#pragma once
#include <ATen/ATen.h>

namespace shrink::ops {

// a @ b for 2-D tensors. float32 CPU strided tensors (either operand may be a transposed
// view) go to oneDNN; anything else to at::mm. Differentiable.
at::Tensor dense_mm(const at::Tensor& a, const at::Tensor& b);

// x @ w^T + bias (bias may be undefined): nn.Linear and ONNX Gemm with transB=1.
at::Tensor dense_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias);

// Whether dense_mm() sends these operands to oneDNN (false: at::mm). SHRINK_SGEMM=aten turns
// oneDNN off for the process (for comparison).
bool uses_onednn(const at::Tensor& a, const at::Tensor& b);

}  // namespace shrink::ops
