// ONNX's linear quantization, as the QuantizeLinear and DequantizeLinear kernels compute
// it: q = saturate(round_half_even(x / scale) + zero_point), x = (q - zero_point) * scale,
// per tensor (scalar scale) or per axis (1-D scale along `axis`).
#pragma once
#include <ATen/core/Tensor.h>

namespace shrink::ops {

// `zero_point` may be undefined (0); `type` is uint8, int8 or int32.
at::Tensor quantize_linear(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero_point,
                           at::ScalarType type, int64_t axis);
// The result has the scale's element type.
at::Tensor dequantize_linear(const at::Tensor& q, const at::Tensor& scale, const at::Tensor& zero_point, int64_t axis);

}  // namespace shrink::ops
