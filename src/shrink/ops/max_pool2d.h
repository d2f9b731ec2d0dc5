// 2x2 max pooling with stride 2 and no padding (LeNet's pools and many others) as a direct
// loop, four outputs at a time with SSE2 compares and selects. ATen's CPU max pool
// compares with data-dependent branches: on ReLU outputs it takes 1.2 ms for a
// 64x6x28x28 batch on one thread (0.40 ms on all-zero input, against 30 us for a ReLU of
// the same tensor), the largest cost of a LeNet-5 training step after its convolutions.
// The values and argmax indices are ATen's exactly: the window is scanned top-left,
// top-right, bottom-left, bottom-right and a value replaces the running maximum when
// larger or NaN. The backward pass is ATen's max_pool2d_with_indices_backward on those
// indices.
#pragma once
#include <ATen/ATen.h>

#include <utility>
#include <vector>

namespace shrink::ops {

// Whether a 2-D MaxPool window is the one these functions compute on an h x w input:
// kernel 2x2, stride 2, every pad 0, dilation 1, and ceil mode only where it changes
// nothing (even extents).
bool is_2x2_stride2_window(const std::vector<int64_t>& kernel, const std::vector<int64_t>& strides,
                           const std::vector<int64_t>& pads, const std::vector<int64_t>& dilations, bool ceil_mode,
                           int64_t h, int64_t w);

// Whether max_pool2d_2x2 handles this input: float or double, 4-D, H and W at least 2.
bool max_pool2d_2x2_applies(const at::Tensor& x);

// Pooled values (floor mode) and, when with_indices, the argmax as a flat index into each
// input plane (ATen's convention). Differentiable with respect to x.
std::pair<at::Tensor, at::Tensor> max_pool2d_2x2(const at::Tensor& x, bool with_indices);

// The same window over uint8 data (int8 inference: max pooling commutes with affine
// quantization at a positive scale, so the raw codes pool directly). x is uint8, 4-D,
// contiguous in NCHW or channels-last; the result has x's memory format. Values only.
bool max_pool2d_2x2_uint8_applies(const at::Tensor& x);
at::Tensor max_pool2d_2x2_uint8(const at::Tensor& x);

}  // namespace shrink::ops
