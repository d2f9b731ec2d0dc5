// Sliding-window geometry shared by Conv, ConvTranspose and the pools:
// kernel, strides, dilations and begin/end pads, with ONNX's auto_pad resolved.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "shrink/ir/attribute.h"
#include "shrink/ir/tensor_type.h"

namespace shrink::ops {

enum class AutoPad { NotSet, Valid, SameUpper, SameLower };

struct Window {
  std::vector<int64_t> kernel, strides, dilations, pads_begin, pads_end;
  AutoPad auto_pad = AutoPad::NotSet;

  size_t rank() const { return kernel.size(); }
  bool same() const { return auto_pad == AutoPad::SameUpper || auto_pad == AutoPad::SameLower; }
  bool symmetric() const { return pads_begin == pads_end; }
  // Extent of one dilated kernel window along dim i.
  int64_t extent(size_t i) const { return (kernel[i] - 1) * dilations[i] + 1; }
  // Resolves SAME_UPPER / SAME_LOWER / VALID pads for these input extents
  // (an unknown extent, kDynamic, leaves its pads unresolved).
  Window resolved(const std::vector<int64_t>& spatial_in) const;
  // This window for an input with these spatial extents: itself when auto_pad is
  // NOTSET (no copy on a kernel's hot path), else resolved into `scratch`.
  const Window& for_input(c10::IntArrayRef spatial_in, Window& scratch) const;
  // Output extent for input extent `in` (floor or ceil division); kDynamic stays.
  int64_t output_extent(size_t i, int64_t in, bool ceil_mode) const;
  // Pads in at::constant_pad_nd order: last dimension first, (begin, end) pairs.
  std::vector<int64_t> torch_pad_order() const;
};

// Reads kernel_shape (or the given kernel), strides, dilations, pads and auto_pad.
Window read_window(const ir::Attributes& attrs, const std::vector<int64_t>& kernel);

// A Conv node's output type for input x and weight w (its attributes: pads, strides,
// dilations, group, auto_pad), with element type `out`. Defined with Conv.
ir::TensorType conv_output_type(const ir::TensorType& x, const ir::TensorType& w, const ir::Attributes& attrs,
                                at::ScalarType out);
// at::convolution with a Conv node's attributes (asymmetric pads applied as padding).
at::Tensor convolve(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, const ir::Attributes& attrs);

}  // namespace shrink::ops
