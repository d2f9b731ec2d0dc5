// The int8 execution engine: LibTorch's quantized engine (oneDNN, else FBGEMM) behind
// the ai.shrink Int8* ops (ops/int8.cpp) that the lower_int8 pass introduces.
#pragma once
#include <ATen/ATen.h>

namespace shrink::ops {

// Whether LibTorch offers a quantized engine with int8 conv and linear kernels; selects
// it on first use.
bool int8_engine_available();

// x (float) to a quint8 per-tensor tensor, equal to at::quantize_per_tensor's:
// clamp(zero_point + nearbyint(x * (1 / scale)), 0, 255), the product in float. Keeps
// x's memory format. Four vectorised passes; ATen's CPU kernel here is 2.8x slower.
at::Tensor quantize_uint8(const at::Tensor& x, double scale, int64_t zero_point);

}  // namespace shrink::ops
