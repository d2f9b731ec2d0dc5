// Conv (1-D/2-D/3-D, groups, dilations, asymmetric pads, auto_pad) and ConvTranspose.
#include <ATen/core/grad_mode.h>

#include "shrink/ops/common.h"
#include "shrink/ops/dnnl_kernels.h"
#include "shrink/ops/window.h"

namespace shrink::ops {
namespace {

std::vector<int64_t> spatial_of(const std::vector<int64_t>& dims) {
  SHRINK_CHECK(dims.size() >= 3, "expected rank >= 3 ([N, C, spatial...]), got rank ", dims.size());
  return std::vector<int64_t>(dims.begin() + 2, dims.end());
}

// The window's rank (kernel_shape, or the weight's) must be the input's spatial rank.
void check_window_rank(size_t window_rank, const TensorType& x) {
  SHRINK_CHECK(window_rank + 2 == static_cast<size_t>(x.rank()), "kernel has ", window_rank,
               " spatial dims but the input ", x.to_string(), " has ", x.rank() - 2);
}

std::vector<int64_t> kernel_dims_of(const TensorType& w) {
  SHRINK_CHECK(w.has_shape && w.rank() >= 3, "weight must have rank >= 3, got ", w.to_string());
  return spatial_of(w.dims);
}

}  // namespace

TensorType conv_output_type(const TensorType& x, const TensorType& w, const ir::Attributes& attrs, at::ScalarType out) {
  if (!x.has_shape || !w.has_shape) return TensorType::unknown(out);
  SHRINK_CHECK(x.rank() == w.rank() && x.rank() >= 3, "input ", x.to_string(), " and weight ", w.to_string(),
               " must have the same rank, at least 3");
  int64_t group = attrs.get_int("group", 1);
  SHRINK_CHECK(group >= 1, "group must be positive, got ", group);
  if (x.dims[1] != kDynamic && w.dims[1] != kDynamic)
    SHRINK_CHECK(x.dims[1] == w.dims[1] * group, "input has ", x.dims[1],
                 " channels but weight expects ", w.dims[1], " x group ", group);
  Window read = read_window(attrs, kernel_dims_of(w));
  check_window_rank(read.rank(), x);
  Window win = read.resolved(spatial_of(x.dims));
  std::vector<int64_t> dims = {x.dims[0], w.dims[0]};
  for (size_t i = 0; i < win.rank(); ++i) dims.push_back(win.output_extent(i, x.dims[i + 2], false));
  return TensorType::of(out, dims);
}

at::Tensor convolve(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, const ir::Attributes& attrs) {
  SHRINK_CHECK(x.dim() == w.dim(), "input rank ", x.dim(), " differs from weight rank ", w.dim());
  Window read = read_window(attrs, spatial_of(w.sizes().vec())), scratch;
  const Window& win = read.for_input(x.sizes().slice(2), scratch);
  int64_t group = attrs.get_int("group", 1);
  std::vector<int64_t> zeros(win.rank(), 0);
  if (win.symmetric()) return at::convolution(x, w, b, win.strides, win.pads_begin, win.dilations, false, zeros, group);
  at::Tensor padded = at::constant_pad_nd(x, win.torch_pad_order(), 0);
  return at::convolution(padded, w, b, win.strides, zeros, win.dilations, false, zeros, group);
}

namespace {

std::vector<TensorType> infer_conv(const InferContext& ctx) {
  return {conv_output_type(ctx.input(0), ctx.input(1), ctx.node.attrs, ctx.input(0).dtype)};
}

// Kernel extents from kernel_shape, else from the weight's inferred shape; empty if unknown.
std::vector<int64_t> known_kernel(const ir::Node& node) {
  if (node.attrs.has("kernel_shape")) return node.attrs.get_ints("kernel_shape");
  const ir::Value* w = node.input(1);
  if (w && w->type.is_static() && w->type.rank() >= 3) return spatial_of(w->type.dims);
  return {};
}

// Inference on oneDNN with the weight reordered to its blocked layout once, instead of
// on every call as at::convolution does (ONNX Runtime pre-packs the same way).
// Repacked when the weight tensor or its version (an in-place update) changes.
struct PackedWeight {
  const void* source = nullptr;
  int64_t version = -1;
  at::Tensor packed;
};

// Tiny convolutions (LeNet's, a 3-channel stem) lose more to oneDNN's layout
// conversions of input and output than they gain from a packed weight.
bool can_pack(const at::Tensor& x, const at::Tensor& w, const Window& win) {
  return w.dim() == 4 && w.size(1) >= 16 && !at::GradMode::is_enabled() && at::hasMKLDNN() && x.dim() == 4 && x.scalar_type() == at::kFloat &&
         w.scalar_type() == at::kFloat && win.symmetric() && w.is_contiguous();
}

Kernel make_conv(const ir::Node& node) {
  int64_t group = node.attrs.get_int("group", 1);
  std::vector<int64_t> kernel = known_kernel(node);
  std::optional<Window> fixed;
  if (!kernel.empty()) fixed = read_window(node.attrs, kernel);
  ir::Attributes attrs = node.attrs;
  auto cache = std::make_shared<PackedWeight>();
  return [group, fixed, attrs, cache](const KernelContext& ctx, const Tensors& in) -> Tensors {
    const at::Tensor& x = in[0];
    const at::Tensor& w = in[1];
    at::Tensor b = in.size() > 2 ? in[2] : at::Tensor();
    SHRINK_CHECK(x.dim() == w.dim(), "input rank ", x.dim(), " differs from weight rank ", w.dim());
    Window read, resolved;
    const Window& base = fixed ? *fixed : (read = read_window(attrs, spatial_of(w.sizes().vec())));
    const Window& win = base.for_input(x.sizes().slice(2), resolved);
    if (!ctx.training && can_pack(x, w, win)) {
      if (cache->source != w.unsafeGetTensorImpl() || cache->version != static_cast<int64_t>(w._version())) {
        cache->packed = at::mkldnn_reorder_conv2d_weight(w.detach().to_mkldnn(), win.pads_begin, win.strides, win.dilations, group);
        cache->source = w.unsafeGetTensorImpl();
        cache->version = static_cast<int64_t>(w._version());
      }
      return {at::mkldnn_convolution(x.contiguous(), cache->packed, b.defined() ? c10::optional<at::Tensor>(b.detach()) : c10::nullopt,
                                     win.pads_begin, win.strides, win.dilations, group)};
    }
    std::vector<int64_t> zeros(win.rank(), 0);
    if (win.symmetric())
      return {at::convolution(x, w, b, win.strides, win.pads_begin, win.dilations, false, zeros, group)};
    at::Tensor padded = at::constant_pad_nd(x, win.torch_pad_order(), 0);
    return {at::convolution(padded, w, b, win.strides, zeros, win.dilations, false, zeros, group)};
  };
}

// Per-dimension geometry of a transposed convolution, per the ONNX ConvTranspose spec.
struct TransposeGeometry {
  std::vector<int64_t> out, pads_begin, pads_end, output_padding;
};

struct TransposeAttrs {
  Window win;
  std::vector<int64_t> output_padding, output_shape;
};

TransposeAttrs read_transpose_attrs(const ir::Attributes& attrs, const std::vector<int64_t>& kernel) {
  TransposeAttrs t{read_window(attrs, kernel), {}, {}};
  size_t n = t.win.rank();
  t.output_padding = attrs.get_ints("output_padding", std::vector<int64_t>(n, 0));
  t.output_shape = attrs.get_ints("output_shape");
  if (t.output_shape.size() > n) t.output_shape.erase(t.output_shape.begin(), t.output_shape.end() - n);
  SHRINK_CHECK(t.output_padding.size() == n && (t.output_shape.empty() || t.output_shape.size() == n),
               "output_padding and output_shape must match the ", n, " spatial dims of the kernel");
  return t;
}

TransposeGeometry transpose_geometry(const TransposeAttrs& a, const std::vector<int64_t>& in) {
  TransposeGeometry g;
  const Window& win = a.win;
  size_t n = win.rank();
  g.output_padding = a.output_padding;
  const std::vector<int64_t>& output_shape = a.output_shape;
  bool same = win.same();
  for (size_t i = 0; i < n; ++i) {
    if (in[i] == kDynamic) {
      g.out.push_back(kDynamic);
      g.pads_begin.push_back(0);
      g.pads_end.push_back(0);
      continue;
    }
    int64_t full = win.strides[i] * (in[i] - 1) + g.output_padding[i] + win.extent(i);
    if (!output_shape.empty() || same) {
      int64_t target = !output_shape.empty() ? output_shape[i] : in[i] * win.strides[i];
      int64_t total = full - target;
      // Floor division, as the ONNX reference: extra output (negative padding) goes at the end.
      int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2), rest = total - half;
      bool upper = win.auto_pad == AutoPad::SameUpper;
      g.pads_begin.push_back(upper ? half : rest);
      g.pads_end.push_back(upper ? rest : half);
      g.out.push_back(target);
    } else {
      int64_t pb = win.auto_pad == AutoPad::Valid ? 0 : win.pads_begin[i];
      int64_t pe = win.auto_pad == AutoPad::Valid ? 0 : win.pads_end[i];
      g.pads_begin.push_back(pb);
      g.pads_end.push_back(pe);
      g.out.push_back(full - pb - pe);
    }
  }
  return g;
}

std::vector<TensorType> infer_conv_transpose(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  const TensorType& w = ctx.input(1);
  if (!x.has_shape || !w.has_shape) return {TensorType::unknown(x.dtype)};
  SHRINK_CHECK(x.rank() == w.rank() && x.rank() >= 3, "input ", x.to_string(), " and weight ", w.to_string(),
               " must have the same rank, at least 3");
  int64_t group = ctx.node.attrs.get_int("group", 1);
  SHRINK_CHECK(group >= 1, "group must be positive, got ", group);
  TransposeAttrs attrs = read_transpose_attrs(ctx.node.attrs, kernel_dims_of(w));
  check_window_rank(attrs.win.rank(), x);
  TransposeGeometry g = transpose_geometry(attrs, spatial_of(x.dims));
  std::vector<int64_t> out = {x.dims[0], w.dims[1] == kDynamic ? kDynamic : w.dims[1] * group};
  out.insert(out.end(), g.out.begin(), g.out.end());
  return {TensorType::of(x.dtype, out)};
}

Kernel make_conv_transpose(const ir::Node& node) {
  int64_t group = node.attrs.get_int("group", 1);
  std::vector<int64_t> kernel = known_kernel(node);
  std::optional<TransposeAttrs> fixed;
  if (!kernel.empty()) fixed = read_transpose_attrs(node.attrs, kernel);
  ir::Attributes attrs = node.attrs;
  return [group, fixed, attrs](const KernelContext&, const Tensors& in) -> Tensors {
    const at::Tensor& x = in[0];
    const at::Tensor& w = in[1];
    at::Tensor b = in.size() > 2 ? in[2] : at::Tensor();
    TransposeAttrs ta = fixed ? *fixed : read_transpose_attrs(attrs, spatial_of(w.sizes().vec()));
    const Window& win = ta.win;
    TransposeGeometry g = transpose_geometry(ta, spatial_of(x.sizes().vec()));
    bool fast = g.pads_begin == g.pads_end;
    for (size_t i = 0; i < win.rank() && fast; ++i)
      fast = g.pads_begin[i] >= 0 &&
             g.output_padding[i] < std::max(win.strides[i], win.dilations[i]);
    if (fast)
      return {at::convolution(x, w, b, win.strides, g.pads_begin, win.dilations, true,
                              g.output_padding, group)};
    // General case: full transposed conv, then grow/crop each side (negative pad crops).
    std::vector<int64_t> zeros(win.rank(), 0);
    at::Tensor y = at::convolution(x, w, {}, win.strides, zeros, win.dilations, true, zeros, group);
    std::vector<int64_t> pads;
    for (size_t i = win.rank(); i-- > 0;) {
      pads.push_back(-g.pads_begin[i]);
      pads.push_back(-g.pads_end[i] + g.output_padding[i]);
    }
    y = at::constant_pad_nd(y, pads, 0);
    if (b.defined()) {
      std::vector<int64_t> shape(y.dim(), 1);
      shape[1] = -1;
      y = y + b.view(shape);
    }
    return {y};
  };
}

}  // namespace

// FusedConv (ai.shrink; passes/fuse_conv.cpp): a 2-D Conv with the element-wise ops and
// residual Add after it, on oneDNN (dnnl_kernels.h). Inputs x, w, bias?, residual?;
// attributes: Conv's (explicit pads), post = the post-ops in order, comma-separated
// (relu, clip, hardswish, silu, sigmoid, sum), clip_min / clip_max.
std::vector<ConvPostOp> read_post_ops(const ir::Attributes& attrs) {
  std::vector<ConvPostOp> out;
  std::string spec = attrs.get_string("post", "");
  size_t start = 0;
  while (start < spec.size()) {
    size_t end = spec.find(',', start);
    if (end == std::string::npos) end = spec.size();
    std::string name = spec.substr(start, end - start);
    start = end + 1;
    ConvPostOp op{ConvPostOp::Relu};
    if (name == "relu") op.kind = ConvPostOp::Relu;
    else if (name == "clip") op = {ConvPostOp::Clip, attrs.get_float("clip_min", 0.0f), attrs.get_float("clip_max", 6.0f)};
    else if (name == "hardswish") op.kind = ConvPostOp::HardSwish;
    else if (name == "silu") op.kind = ConvPostOp::Silu;
    else if (name == "sigmoid") op.kind = ConvPostOp::Sigmoid;
    else if (name == "sum") op.kind = ConvPostOp::Sum;
    else fail("FusedConv: unknown post-op '", name, "'");
    out.push_back(op);
  }
  return out;
}

Kernel make_fused_conv(const ir::Node& node) {
  Window win = read_window(node.attrs, node.attrs.get_ints("kernel_shape"));
  SHRINK_CHECK(win.rank() == 2 && !win.same(), node.describe(), ": FusedConv takes 2-D windows with explicit pads");
  std::vector<ConvPostOp> post = read_post_ops(node.attrs);
  bool sum = false;
  for (const ConvPostOp& op : post) sum = sum || op.kind == ConvPostOp::Sum;
  auto conv = std::make_shared<FusedConv>(win.strides, win.dilations, win.pads_begin, win.pads_end,
                                          node.attrs.get_int("group", 1), post);
  const bool has_bias = node.inputs().size() > 2 && node.input(2);
  return [conv, sum, has_bias](const KernelContext&, const Tensors& in) -> Tensors {
    at::Tensor bias = has_bias ? in[2] : at::Tensor();
    at::Tensor residual = sum ? in[3] : at::Tensor();
    return {(*conv)(in[0], in[1], bias, residual)};
  };
}

void register_conv_ops(OpRegistry& r) {
  OpDef fused;
  fused.name = "FusedConv";
  fused.domain = "ai.shrink";
  fused.min_inputs = 2;
  fused.max_inputs = 4;
  fused.param_inputs = {1, 2};
  fused.infer = [](const InferContext& ctx) {
    return std::vector<TensorType>{conv_output_type(ctx.input(0), ctx.input(1), ctx.node.attrs, at::kFloat)};
  };
  fused.make_kernel = make_fused_conv;
  r.add(fused);

  OpDef conv;
  conv.name = "Conv";
  conv.min_inputs = 2;
  conv.max_inputs = 3;
  conv.param_inputs = {1, 2};
  conv.infer = infer_conv;
  conv.make_kernel = make_conv;
  r.add(conv);

  OpDef convt;
  convt.name = "ConvTranspose";
  convt.min_inputs = 2;
  convt.max_inputs = 3;
  convt.param_inputs = {1, 2};
  convt.infer = infer_conv_transpose;
  convt.make_kernel = make_conv_transpose;
  r.add(convt);
}

}  // namespace shrink::ops
