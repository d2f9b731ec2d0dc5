// MaxPool (with indices), AveragePool, GlobalAveragePool, GlobalMaxPool.
#include <limits>

#include "shrink/ops/common.h"
#include "shrink/ops/dnnl_kernels.h"
#include "shrink/ops/max_pool2d.h"
#include "shrink/ops/window.h"

namespace shrink::ops {
namespace {

std::vector<TensorType> infer_pool(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  if (!x.has_shape) return {x, TensorType::unknown(at::kLong)};
  Window win = read_window(ctx.node.attrs, {});
  SHRINK_CHECK(static_cast<int64_t>(win.rank()) == x.rank() - 2, "kernel_shape has ", win.rank(),
               " dims but input ", x.to_string(), " has ", x.rank() - 2, " spatial dims");
  win = win.resolved({x.dims.begin() + 2, x.dims.end()});
  bool ceil_mode = ctx.node.attrs.get_int("ceil_mode", 0) != 0;
  std::vector<int64_t> out = {x.dims[0], x.dims[1]};
  for (size_t i = 0; i < win.rank(); ++i)
    out.push_back(win.output_extent(i, x.dims[i + 2], ceil_mode));
  return {TensorType::of(x.dtype, out), TensorType::of(at::kLong, out)};
}

// PyTorch pools take symmetric pads of at most half the (dilated) window.
bool torch_can_pad(const Window& w) {
  if (!w.symmetric()) return false;
  for (size_t i = 0; i < w.rank(); ++i)
    if (w.pads_begin[i] * 2 > w.extent(i)) return false;
  return true;
}

// ONNX MaxPool indices: flat over the whole tensor (row- or column-major spatial).
at::Tensor onnx_indices(const at::Tensor& idx, const std::vector<int64_t>& spatial,
                        const Window& w, bool padded, int64_t storage_order) {
  at::Tensor flat = idx;
  int64_t r = static_cast<int64_t>(spatial.size());
  if (padded || storage_order == 1) {
    // Decode the position in the (possibly padded) input, re-encode in the original.
    std::vector<int64_t> ext(spatial);
    if (padded)
      for (int64_t i = 0; i < r; ++i) ext[i] += w.pads_begin[i] + w.pads_end[i];
    std::vector<at::Tensor> coord(r);
    at::Tensor rest = idx;
    for (int64_t i = r - 1; i >= 0; --i) {
      coord[i] = at::remainder(rest, ext[i]) - (padded ? w.pads_begin[i] : 0);
      rest = at::div(rest, ext[i], "floor");
    }
    flat = at::zeros_like(idx);
    int64_t stride = 1;
    if (storage_order == 1) {
      for (int64_t i = 0; i < r; ++i) {
        flat = flat + coord[i] * stride;
        stride *= spatial[i];
      }
    } else {
      for (int64_t i = r - 1; i >= 0; --i) {
        flat = flat + coord[i] * stride;
        stride *= spatial[i];
      }
    }
  }
  int64_t plane = 1;
  for (int64_t s : spatial) plane *= s;
  int64_t n = idx.size(0), c = idx.size(1);
  std::vector<int64_t> shape(idx.dim(), 1);
  shape[0] = n;
  shape[1] = c;
  at::Tensor offset = at::arange(n * c, idx.options()).view(shape) * plane;
  return flat + offset;
}

Tensors max_pool_any_rank(const at::Tensor& x, const Window& w, const std::vector<int64_t>& pads,
                        bool ceil_mode, bool want_indices, size_t r) {
  std::tuple<at::Tensor, at::Tensor> yi;
  if (r == 1) yi = at::max_pool1d_with_indices(x, w.kernel, w.strides, pads, w.dilations, ceil_mode);
  else if (r == 2) yi = at::max_pool2d_with_indices(x, w.kernel, w.strides, pads, w.dilations, ceil_mode);
  else if (r == 3) yi = at::max_pool3d_with_indices(x, w.kernel, w.strides, pads, w.dilations, ceil_mode);
  else fail("MaxPool supports 1 to 3 spatial dims, got ", r);
  if (!want_indices) return {std::get<0>(yi)};
  return {std::get<0>(yi), std::get<1>(yi)};
}

Kernel make_max_pool(const ir::Node& node) {
  Window base = read_window(node.attrs, {});
  bool ceil_mode = node.attrs.get_int("ceil_mode", 0) != 0;
  int64_t storage_order = node.attrs.get_int("storage_order", 0);
  bool want_indices = node.outputs().size() > 1;
  return [=](const KernelContext&, const Tensors& in) -> Tensors {
    at::Tensor x = in[0];
    std::vector<int64_t> spatial(x.sizes().begin() + 2, x.sizes().end());
    Window scratch;
    const Window& w = base.for_input(spatial, scratch);
    bool padded = !torch_can_pad(w);
    std::vector<int64_t> pads = w.pads_begin;
    if (padded) {
      x = at::constant_pad_nd(x, w.torch_pad_order(), -std::numeric_limits<double>::infinity());
      pads.assign(w.rank(), 0);
    }
    size_t r = w.rank();
    // ATen pools floating point only; integers are exact in double.
    at::ScalarType type = x.scalar_type();
    if (!at::isFloatingType(type)) {
      Tensors out = max_pool_any_rank(x.to(at::kDouble), w, pads, ceil_mode, want_indices, r);
      out[0] = out[0].to(type);
      if (want_indices) out[1] = onnx_indices(out[1], spatial, w, padded, storage_order);
      return out;
    }
    if (r == 2 && max_pool2d_2x2_applies(x) &&
        is_2x2_stride2_window(w.kernel, w.strides, pads, w.dilations, ceil_mode, x.size(2), x.size(3))) {
      auto [y, indices] = max_pool2d_2x2(x, want_indices);
      if (!want_indices) return {y};
      return {y, onnx_indices(indices, spatial, w, padded, storage_order)};
    }
    if (!want_indices) {
      if (r == 1) return {at::max_pool1d(x, w.kernel, w.strides, pads, w.dilations, ceil_mode)};
      if (r == 2 && !ceil_mode && !padded && w.dilations == std::vector<int64_t>{1, 1})
        return {max_pool2d_inference(x, w.kernel, w.strides, pads, pads)};
      if (r == 2) return {at::max_pool2d(x, w.kernel, w.strides, pads, w.dilations, ceil_mode)};
    }
    Tensors out = max_pool_any_rank(x, w, pads, ceil_mode, want_indices, r);
    if (want_indices) out[1] = onnx_indices(out[1], spatial, w, padded, storage_order);
    return out;
  };
}

at::Tensor avg_pool(const at::Tensor& x, const Window& w, const std::vector<int64_t>& pads,
                    bool ceil_mode, bool include_pad) {
  switch (w.rank()) {
    case 1: return at::avg_pool1d(x, w.kernel, w.strides, pads, ceil_mode, include_pad);
    case 2: return at::avg_pool2d(x, w.kernel, w.strides, pads, ceil_mode, include_pad);
    case 3: return at::avg_pool3d(x, w.kernel, w.strides, pads, ceil_mode, include_pad);
    default: fail("AveragePool supports 1 to 3 spatial dims, got ", w.rank());
  }
}

Kernel make_avg_pool(const ir::Node& node) {
  Window base = read_window(node.attrs, {});
  bool ceil_mode = node.attrs.get_int("ceil_mode", 0) != 0;
  bool include_pad = node.attrs.get_int("count_include_pad", 0) != 0;
  return [=](const KernelContext&, const Tensors& in) -> Tensors {
    const at::Tensor& x = in[0];
    Window scratch;
    const Window& w = base.for_input(x.sizes().slice(2), scratch);
    if (torch_can_pad(w)) return {avg_pool(x, w, w.pads_begin, ceil_mode, include_pad)};
    // Pads PyTorch cannot take: pad with zeros, pool, and divide by the share of
    // real (unpadded) elements in each window when padding is not counted.
    std::vector<int64_t> zeros(w.rank(), 0);
    at::Tensor y = avg_pool(at::constant_pad_nd(x, w.torch_pad_order(), 0), w, zeros, ceil_mode, true);
    if (include_pad) return {y};
    std::vector<int64_t> ones_shape(x.dim(), 1);
    for (int64_t i = 2; i < x.dim(); ++i) ones_shape[i] = x.size(i);
    at::Tensor ones = at::constant_pad_nd(at::ones(ones_shape, x.options()), w.torch_pad_order(), 0);
    return {y / avg_pool(ones, w, zeros, ceil_mode, true)};
  };
}

OpDef global_pool(const std::string& name, bool is_max) {
  OpDef d;
  d.name = name;
  d.infer = [](const InferContext& ctx) -> std::vector<TensorType> {
    TensorType t = ctx.input(0);
    for (int64_t i = 2; i < t.rank(); ++i) t.dims[i] = 1;
    t.dim_names.clear();
    return {t};
  };
  d.make_kernel = simple_kernel([is_max](const Tensors& in) {
    std::vector<int64_t> dims;
    for (int64_t i = 2; i < in[0].dim(); ++i) dims.push_back(i);
    return is_max ? in[0].amax(dims, true) : in[0].mean(dims, true);
  });
  return d;
}

}  // namespace

void register_pool_ops(OpRegistry& r) {
  OpDef max_pool;
  max_pool.name = "MaxPool";
  max_pool.infer = infer_pool;
  max_pool.make_kernel = make_max_pool;
  r.add(max_pool);

  OpDef avg;
  avg.name = "AveragePool";
  avg.infer = [](const InferContext& ctx) { return std::vector<TensorType>{infer_pool(ctx)[0]}; };
  avg.make_kernel = make_avg_pool;
  r.add(avg);

  r.add(global_pool("GlobalAveragePool", false));
  r.add(global_pool("GlobalMaxPool", true));
}

}  // namespace shrink::ops
