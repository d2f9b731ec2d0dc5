#include "shrink/ops/window.h"

#include "shrink/core/error.h"
#include "shrink/ir/tensor_type.h"

namespace shrink::ops {

Window read_window(const ir::Attributes& attrs, const std::vector<int64_t>& kernel) {
  Window w;
  w.kernel = attrs.get_ints("kernel_shape", kernel);
  size_t n = w.kernel.size();
  w.strides = attrs.get_ints("strides", std::vector<int64_t>(n, 1));
  w.dilations = attrs.get_ints("dilations", std::vector<int64_t>(n, 1));
  std::vector<int64_t> pads = attrs.get_ints("pads", std::vector<int64_t>(2 * n, 0));
  std::string auto_pad = attrs.get_string("auto_pad", "NOTSET");
  SHRINK_CHECK(w.strides.size() == n && w.dilations.size() == n && pads.size() == 2 * n,
               "strides, dilations and pads must match the ", n, " spatial dims of the kernel");
  w.pads_begin.assign(pads.begin(), pads.begin() + n);
  w.pads_end.assign(pads.begin() + n, pads.end());
  if (auto_pad == "VALID") w.auto_pad = AutoPad::Valid;
  else if (auto_pad == "SAME_UPPER") w.auto_pad = AutoPad::SameUpper;
  else if (auto_pad == "SAME_LOWER") w.auto_pad = AutoPad::SameLower;
  else SHRINK_CHECK(auto_pad == "NOTSET", "auto_pad '", auto_pad,
                    "' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER");
  for (size_t i = 0; i < n; ++i)
    SHRINK_CHECK(w.strides[i] > 0 && w.dilations[i] > 0 && w.kernel[i] > 0,
                 "kernel, strides and dilations must be positive");
  return w;
}

Window Window::resolved(const std::vector<int64_t>& spatial_in) const {
  Window w = *this;
  if (auto_pad == AutoPad::NotSet) return w;
  for (size_t i = 0; i < rank(); ++i) {
    if (auto_pad == AutoPad::Valid) {
      w.pads_begin[i] = w.pads_end[i] = 0;
      continue;
    }
    if (spatial_in[i] == ir::kDynamic) {
      w.pads_begin[i] = w.pads_end[i] = ir::kDynamic;
      continue;
    }
    int64_t out = (spatial_in[i] + strides[i] - 1) / strides[i];
    int64_t total = std::max<int64_t>(0, (out - 1) * strides[i] + extent(i) - spatial_in[i]);
    int64_t small = total / 2, big = total - total / 2;
    w.pads_begin[i] = auto_pad == AutoPad::SameUpper ? small : big;
    w.pads_end[i] = auto_pad == AutoPad::SameUpper ? big : small;
  }
  w.auto_pad = AutoPad::NotSet;
  return w;
}

const Window& Window::for_input(c10::IntArrayRef spatial_in, Window& scratch) const {
  if (auto_pad == AutoPad::NotSet) return *this;
  scratch = resolved(spatial_in.vec());
  return scratch;
}

int64_t Window::output_extent(size_t i, int64_t in, bool ceil_mode) const {
  if (in == ir::kDynamic || pads_begin[i] == ir::kDynamic) return ir::kDynamic;
  int64_t span = in + pads_begin[i] + pads_end[i] - extent(i);
  SHRINK_CHECK(span >= 0, "window of extent ", extent(i), " does not fit input extent ", in,
               " with pads ", pads_begin[i], "+", pads_end[i]);
  int64_t out = ceil_mode ? (span + strides[i] - 1) / strides[i] + 1 : span / strides[i] + 1;
  // As in PyTorch and ONNX Runtime: the last window must start inside the input or left pad.
  if (ceil_mode && (out - 1) * strides[i] >= in + pads_begin[i]) --out;
  return out;
}

std::vector<int64_t> Window::torch_pad_order() const {
  std::vector<int64_t> p;
  for (size_t i = rank(); i-- > 0;) {
    p.push_back(pads_begin[i]);
    p.push_back(pads_end[i]);
  }
  return p;
}

}  // namespace shrink::ops
