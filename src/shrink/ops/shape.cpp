// Ops that move data without arithmetic: Flatten, Reshape, Transpose, Concat, Split,
// Slice, Squeeze, Unsqueeze, Expand, Tile, Pad, DepthToSpace, SpaceToDepth.
#include "shrink/ops/common.h"

namespace shrink::ops {
namespace {

// a * b for extents, refusing a product no tensor could have (instead of overflowing).
int64_t extent_product(int64_t a, int64_t b) {
  int64_t p = 0;
  SHRINK_CHECK(!__builtin_mul_overflow(a, b, &p), "extent ", a, " x ", b, " overflows 64 bits");
  return p;
}

int64_t product(const std::vector<int64_t>& dims, size_t from, size_t to) {
  int64_t p = 1;
  for (size_t i = from; i < to; ++i) {
    if (dims[i] == kDynamic) return kDynamic;
    p = extent_product(p, dims[i]);
  }
  return p;
}

// --- Reshape ---
// Target shape of Reshape. Extents copied by a 0 cancel out of both sides, so a
// symbolic batch kept by 0 still lets the -1 be inferred.
std::vector<int64_t> reshape_target(std::vector<int64_t> shape, const std::vector<int64_t>& in,
                                    bool allow_zero) {
  int64_t infer_at = -1, known = 1;
  std::vector<bool> copied(in.size(), false);
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      SHRINK_CHECK(infer_at < 0, "shape has more than one -1");
      infer_at = static_cast<int64_t>(i);
      continue;
    }
    if (shape[i] == 0 && !allow_zero) {
      SHRINK_CHECK(i < in.size(), "shape entry ", i, " is 0 but the input has rank ", in.size());
      shape[i] = in[i];  // may be unknown (kDynamic)
      copied[i] = true;
      continue;
    }
    known = (shape[i] == kDynamic || known == kDynamic) ? kDynamic : extent_product(known, shape[i]);
  }
  if (infer_at >= 0) {
    int64_t total = 1;
    for (size_t i = 0; i < in.size() && total != kDynamic; ++i)
      if (!copied[i]) total = in[i] == kDynamic ? kDynamic : extent_product(total, in[i]);
    shape[infer_at] = (total == kDynamic || known == kDynamic || known == 0) ? kDynamic : total / known;
  }
  return shape;
}

std::vector<TensorType> infer_reshape(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  std::vector<int64_t> shape;
  if (!ctx.constant_ints(1, shape)) {
    const TensorType& s = ctx.input(1);
    if (s.is_static()) return {unknown_dims(x.dtype, s.dims[0])};
    return {TensorType::unknown(x.dtype)};
  }
  bool allow_zero = ctx.node.attrs.get_int("allowzero", 0) != 0;
  std::vector<int64_t> in = x.has_shape ? x.dims : std::vector<int64_t>(shape.size(), kDynamic);
  std::vector<int64_t> out = reshape_target(shape, in, allow_zero);
  int64_t total_in = x.has_shape ? product(in, 0, in.size()) : kDynamic;
  int64_t total_out = product(out, 0, out.size());
  SHRINK_CHECK(total_in == kDynamic || total_out == kDynamic || total_in == total_out,
               "cannot reshape ", x.to_string(), " (", total_in, " elements) to ",
               TensorType::of(x.dtype, out).to_string());
  return {TensorType::of(x.dtype, out)};
}

Kernel make_reshape(const ir::Node& node) {
  bool allow_zero = node.attrs.get_int("allowzero", 0) != 0;
  return [allow_zero](const KernelContext&, const Tensors& in) -> Tensors {
    std::vector<int64_t> shape = to_ints(in[1]);
    if (!allow_zero)
      for (size_t i = 0; i < shape.size(); ++i)
        if (shape[i] == 0) shape[i] = in[0].size(static_cast<int64_t>(i));
    return {in[0].reshape(shape)};
  };
}

// --- Flatten ---
std::vector<TensorType> infer_flatten(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  if (!x.has_shape) return {unknown_dims(x.dtype, 2)};
  int64_t axis = ctx.node.attrs.get_int("axis", 1);
  axis = axis < 0 ? axis + x.rank() : axis;
  SHRINK_CHECK(axis >= 0 && axis <= x.rank(), "axis out of range for ", x.to_string());
  return {TensorType::of(x.dtype, {product(x.dims, 0, axis), product(x.dims, axis, x.dims.size())})};
}

Kernel make_flatten(const ir::Node& node) {
  int64_t axis = node.attrs.get_int("axis", 1);
  return [axis](const KernelContext&, const Tensors& in) -> Tensors {
    int64_t a = axis < 0 ? axis + in[0].dim() : axis;
    int64_t outer = 1;
    for (int64_t i = 0; i < a; ++i) outer *= in[0].size(i);
    return {in[0].reshape({outer, outer == 0 ? 0 : in[0].numel() / std::max<int64_t>(outer, 1)})};
  };
}

// --- Transpose ---
std::vector<int64_t> permutation(const ir::Node& node, int64_t rank) {
  std::vector<int64_t> perm = node.attrs.get_ints("perm");
  if (perm.empty())
    for (int64_t i = rank - 1; i >= 0; --i) perm.push_back(i);
  SHRINK_CHECK(static_cast<int64_t>(perm.size()) == rank, "perm has ", perm.size(),
               " entries for rank ", rank);
  return perm;
}

std::vector<TensorType> infer_transpose(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  if (!x.has_shape) return {x};
  std::vector<int64_t> perm = permutation(ctx.node, x.rank()), out;
  for (int64_t p : perm) out.push_back(x.dims.at(normalize_axis(p, x.rank())));
  return {TensorType::of(x.dtype, out)};
}

// --- Concat / Split ---
std::vector<TensorType> infer_concat(const InferContext& ctx) {
  TensorType out = ctx.input(0);
  out.dim_names.clear();
  if (!out.has_shape) return {out};
  int64_t axis = normalize_axis(ctx.node.attrs.get_int("axis"), out.rank());
  for (size_t i = 1; i < ctx.inputs.size(); ++i) {
    const TensorType& t = ctx.input(i);
    if (!t.has_shape) return {unknown_dims(out.dtype, out.rank())};
    SHRINK_CHECK(t.rank() == out.rank(), "input ", i, " ", t.to_string(), " has a different rank than ",
                 ctx.input(0).to_string());
    for (int64_t d = 0; d < out.rank(); ++d) {
      if (d == axis) {
        out.dims[d] = (out.dims[d] == kDynamic || t.dims[d] == kDynamic) ? kDynamic : out.dims[d] + t.dims[d];
      } else if (out.dims[d] == kDynamic) {
        out.dims[d] = t.dims[d];
      } else {
        SHRINK_CHECK(t.dims[d] == kDynamic || t.dims[d] == out.dims[d], "input ", i, " ",
                     t.to_string(), " does not match ", ctx.input(0).to_string(), " off axis ", axis);
      }
    }
  }
  return {out};
}

std::vector<int64_t> equal_split(int64_t extent, size_t parts) {
  // ONNX: equal parts, the last one smaller when extent does not divide evenly.
  int64_t each = (extent + static_cast<int64_t>(parts) - 1) / static_cast<int64_t>(parts);
  std::vector<int64_t> sizes;
  for (size_t i = 0; i < parts; ++i) {
    sizes.push_back(std::max<int64_t>(0, std::min(each, extent)));
    extent -= sizes.back();
  }
  return sizes;
}

std::vector<TensorType> infer_split(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  size_t parts = ctx.node.outputs().size();
  if (!x.has_shape) return std::vector<TensorType>(parts, x);
  int64_t axis = normalize_axis(ctx.node.attrs.get_int("axis", 0), x.rank());
  std::vector<int64_t> sizes;
  if (ctx.has_input(1)) {
    if (!ctx.constant_ints(1, sizes))
      return std::vector<TensorType>(parts, unknown_dims(x.dtype, x.rank()));
    SHRINK_CHECK(sizes.size() == parts, "split has ", sizes.size(), " sizes for ", parts, " outputs");
  } else if (x.dims[axis] != kDynamic) {
    sizes = equal_split(x.dims[axis], parts);
  }
  std::vector<TensorType> out;
  for (size_t i = 0; i < parts; ++i) {
    TensorType t = TensorType::of(x.dtype, x.dims);
    t.dims[axis] = sizes.empty() ? kDynamic : sizes[i];
    out.push_back(t);
  }
  return out;
}

Kernel make_split(const ir::Node& node) {
  int64_t axis = node.attrs.get_int("axis", 0);
  size_t parts = node.outputs().size();
  return [axis, parts](const KernelContext&, const Tensors& in) -> Tensors {
    int64_t a = normalize_axis(axis, in[0].dim());
    std::vector<int64_t> sizes = in.size() > 1 && in[1].defined() ? to_ints(in[1])
                                                                  : equal_split(in[0].size(a), parts);
    return at::split_with_sizes(in[0], sizes, a);
  };
}

// --- Slice ---
struct SliceRange {
  int64_t start, end, step, length;
};

SliceRange clamp_slice(int64_t start, int64_t end, int64_t step, int64_t dim) {
  SHRINK_CHECK(step != 0, "slice step must not be 0");
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
    return {start, end, step, std::max<int64_t>(0, (end - start + step - 1) / step)};
  }
  start = std::clamp<int64_t>(start, 0, dim - 1);
  end = std::clamp<int64_t>(end, -1, dim - 1);
  return {start, end, step, std::max<int64_t>(0, (start - end - step - 1) / -step)};
}

struct SliceArgs {
  std::vector<int64_t> starts, ends, axes, steps;
};

SliceArgs complete_slice_args(SliceArgs a, int64_t rank) {
  SHRINK_CHECK(a.starts.size() == a.ends.size(), "starts and ends differ in length");
  if (a.axes.empty())
    for (size_t i = 0; i < a.starts.size(); ++i) a.axes.push_back(static_cast<int64_t>(i));
  if (a.steps.empty()) a.steps.assign(a.starts.size(), 1);
  SHRINK_CHECK(a.axes.size() == a.starts.size() && a.steps.size() == a.starts.size(),
               "starts, ends, axes and steps differ in length");
  for (int64_t& ax : a.axes) ax = normalize_axis(ax, rank);
  return a;
}

std::vector<TensorType> infer_slice(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  if (!x.has_shape) return {x};
  SliceArgs a;
  bool known = ctx.constant_ints(1, a.starts) && ctx.constant_ints(2, a.ends) &&
               (!ctx.has_input(3) || ctx.constant_ints(3, a.axes)) &&
               (!ctx.has_input(4) || ctx.constant_ints(4, a.steps));
  if (!known) return {unknown_dims(x.dtype, x.rank())};
  a = complete_slice_args(a, x.rank());
  TensorType out = TensorType::of(x.dtype, x.dims);
  for (size_t i = 0; i < a.axes.size(); ++i) {
    int64_t dim = x.dims[a.axes[i]];
    out.dims[a.axes[i]] = dim == kDynamic ? kDynamic : clamp_slice(a.starts[i], a.ends[i], a.steps[i], dim).length;
  }
  return {out};
}

at::Tensor slice_tensor(at::Tensor x, const SliceArgs& args) {
  SliceArgs a = complete_slice_args(args, x.dim());
  for (size_t i = 0; i < a.axes.size(); ++i) {
    int64_t ax = a.axes[i];
    SliceRange r = clamp_slice(a.starts[i], a.ends[i], a.steps[i], x.size(ax));
    if (r.step > 0) {
      x = x.slice(ax, r.start, r.start + r.length * r.step, r.step);
    } else {
      at::Tensor idx = at::arange(r.start, r.start + r.length * r.step, r.step, x.options().dtype(at::kLong));
      x = x.index_select(ax, idx.slice(0, 0, r.length));
    }
  }
  return x;
}

Kernel make_slice(const ir::Node&) {
  return [](const KernelContext&, const Tensors& in) -> Tensors {
    SliceArgs a{to_ints(in[1]), to_ints(in[2]), {}, {}};
    if (in.size() > 3 && in[3].defined()) a.axes = to_ints(in[3]);
    if (in.size() > 4 && in[4].defined()) a.steps = to_ints(in[4]);
    return {slice_tensor(in[0], a)};
  };
}

// --- Squeeze / Unsqueeze ---
std::vector<TensorType> infer_squeeze(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  if (!x.has_shape) return {x};
  std::vector<int64_t> axes;
  if (ctx.has_input(1) && !ctx.constant_ints(1, axes)) return {TensorType::unknown(x.dtype)};
  std::vector<bool> drop(x.rank(), false);
  if (axes.empty()) {
    for (int64_t i = 0; i < x.rank(); ++i) {
      if (x.dims[i] == kDynamic) return {TensorType::unknown(x.dtype)};
      drop[i] = x.dims[i] == 1;
    }
  }
  for (int64_t a : axes) {
    int64_t ax = normalize_axis(a, x.rank());
    SHRINK_CHECK(x.dims[ax] == 1 || x.dims[ax] == kDynamic, "cannot squeeze axis ", a, " of ",
                 x.to_string(), ": its extent is not 1");
    drop[ax] = true;
  }
  TensorType out = TensorType::of(x.dtype, {});
  for (int64_t i = 0; i < x.rank(); ++i)
    if (!drop[i]) out.dims.push_back(x.dims[i]);
  return {out};
}

Kernel make_squeeze(const ir::Node&) {
  return [](const KernelContext&, const Tensors& in) -> Tensors {
    at::Tensor x = in[0];
    if (in.size() < 2 || !in[1].defined()) return {x.squeeze()};
    std::vector<int64_t> axes = to_ints(in[1]);
    for (int64_t& a : axes) a = normalize_axis(a, x.dim());
    std::sort(axes.rbegin(), axes.rend());
    for (int64_t a : axes) x = x.squeeze(a);
    return {x};
  };
}

std::vector<int64_t> unsqueeze_dims(const std::vector<int64_t>& in, std::vector<int64_t> axes) {
  int64_t rank = static_cast<int64_t>(in.size() + axes.size());
  std::vector<bool> inserted(rank, false);
  for (int64_t a : axes) {
    int64_t ax = normalize_axis(a, rank);
    SHRINK_CHECK(!inserted[ax], "axis ", a, " repeated in Unsqueeze");
    inserted[ax] = true;
  }
  std::vector<int64_t> out;
  size_t j = 0;
  for (int64_t i = 0; i < rank; ++i) out.push_back(inserted[i] ? 1 : in[j++]);
  return out;
}

std::vector<TensorType> infer_unsqueeze(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  std::vector<int64_t> axes;
  if (!x.has_shape || !ctx.constant_ints(1, axes)) return {TensorType::unknown(x.dtype)};
  return {TensorType::of(x.dtype, unsqueeze_dims(x.dims, axes))};
}

Kernel make_unsqueeze(const ir::Node&) {
  return [](const KernelContext&, const Tensors& in) -> Tensors {
    return {in[0].reshape(unsqueeze_dims(in[0].sizes().vec(), to_ints(in[1])))};
  };
}

// --- Expand / Tile ---
std::vector<TensorType> infer_expand(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  std::vector<int64_t> shape;
  if (!ctx.constant_ints(1, shape)) {
    if (ctx.input(1).is_static() && ctx.input(1).rank() == 1 && x.has_shape)
      return {unknown_dims(x.dtype, std::max(x.rank(), ctx.input(1).dims[0]))};
    return {TensorType::unknown(x.dtype)};
  }
  return {broadcast_types(x, TensorType::of(x.dtype, shape), x.dtype)};
}

Kernel make_expand(const ir::Node&) {
  return [](const KernelContext&, const Tensors& in) -> Tensors {
    std::vector<int64_t> shape = to_ints(in[1]);
    std::vector<int64_t> out = at::infer_size(in[0].sizes(), shape);
    return {in[0].expand(out).contiguous()};
  };
}

std::vector<TensorType> infer_tile(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  std::vector<int64_t> repeats;
  if (!x.has_shape) return {x};
  if (!ctx.constant_ints(1, repeats)) return {unknown_dims(x.dtype, x.rank())};
  SHRINK_CHECK(static_cast<int64_t>(repeats.size()) == x.rank(), "repeats has ", repeats.size(),
               " entries for input ", x.to_string());
  TensorType out = TensorType::of(x.dtype, x.dims);
  for (size_t i = 0; i < repeats.size(); ++i)
    if (out.dims[i] != kDynamic) {
      SHRINK_CHECK(repeats[i] >= 0, "repeats must be non-negative, got ", repeats[i]);
      out.dims[i] = extent_product(out.dims[i], repeats[i]);
    }
  return {out};
}

// --- Pad ---
struct PadSpec {
  std::vector<int64_t> begin, end;  // per input dim
};

PadSpec pad_spec(const std::vector<int64_t>& pads, const std::vector<int64_t>& axes, int64_t rank) {
  PadSpec p{std::vector<int64_t>(rank, 0), std::vector<int64_t>(rank, 0)};
  std::vector<int64_t> ax = axes;
  if (ax.empty())
    for (int64_t i = 0; i < rank; ++i) ax.push_back(i);
  SHRINK_CHECK(pads.size() == 2 * ax.size(), "pads has ", pads.size(), " entries, expected ",
               2 * ax.size());
  for (size_t i = 0; i < ax.size(); ++i) {
    int64_t a = normalize_axis(ax[i], rank);
    p.begin[a] = pads[i];
    p.end[a] = pads[i + ax.size()];
  }
  return p;
}

std::vector<TensorType> infer_pad(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  std::vector<int64_t> pads, axes;
  if (!x.has_shape) return {x};
  if (!ctx.constant_ints(1, pads) || (ctx.has_input(3) && !ctx.constant_ints(3, axes)))
    return {unknown_dims(x.dtype, x.rank())};
  PadSpec p = pad_spec(pads, axes, x.rank());
  TensorType out = TensorType::of(x.dtype, x.dims);
  for (int64_t i = 0; i < x.rank(); ++i)
    if (out.dims[i] != kDynamic) out.dims[i] += p.begin[i] + p.end[i];
  return {out};
}

// Index map for reflect / edge padding along one axis.
at::Tensor pad_indices(int64_t n, int64_t begin, int64_t end, bool reflect) {
  at::Tensor i = at::arange(-begin, n + end, at::kLong);
  if (!reflect) return i.clamp(0, n - 1);
  SHRINK_CHECK(n > 1 || (begin == 0 && end == 0), "reflect padding needs an extent > 1");
  int64_t period = 2 * (n - 1);
  i = at::remainder(i, period);
  return at::where(i >= n, period - i, i);
}

Kernel make_pad(const ir::Node& node) {
  std::string mode = node.attrs.get_string("mode", "constant");
  SHRINK_CHECK(mode == "constant" || mode == "reflect" || mode == "edge", node.describe(),
               ": pad mode '", mode, "' is not one of constant, reflect, edge");
  bool constant = mode == "constant", reflect = mode == "reflect";
  return [constant, reflect](const KernelContext&, const Tensors& in) -> Tensors {
    at::Tensor x = in[0];
    std::vector<int64_t> axes;
    if (in.size() > 3 && in[3].defined()) axes = to_ints(in[3]);
    PadSpec p = pad_spec(to_ints(in[1]), axes, x.dim());
    if (constant) {
      double value = in.size() > 2 && in[2].defined() && in[2].numel() > 0 ? in[2].item<double>() : 0.0;
      std::vector<int64_t> order;
      for (int64_t i = x.dim() - 1; i >= 0; --i) {
        order.push_back(p.begin[i]);
        order.push_back(p.end[i]);
      }
      return {at::constant_pad_nd(x, order, value)};
    }
    for (int64_t d = 0; d < x.dim(); ++d)
      if (p.begin[d] || p.end[d])
        x = x.index_select(d, pad_indices(x.size(d), p.begin[d], p.end[d], reflect));
    return {x};
  };
}

// --- DepthToSpace / SpaceToDepth ---
Kernel make_depth_to_space(const ir::Node& node) {
  int64_t b = node.attrs.get_int("blocksize");
  bool crd = node.attrs.get_string("mode", "DCR") == "CRD";
  return [b, crd](const KernelContext&, const Tensors& in) -> Tensors {
    int64_t n = in[0].size(0), c = in[0].size(1), h = in[0].size(2), w = in[0].size(3);
    at::Tensor t = crd ? in[0].reshape({n, c / (b * b), b, b, h, w}).permute({0, 1, 4, 2, 5, 3})
                       : in[0].reshape({n, b, b, c / (b * b), h, w}).permute({0, 3, 4, 1, 5, 2});
    return {t.reshape({n, c / (b * b), h * b, w * b})};
  };
}

Kernel make_space_to_depth(const ir::Node& node) {
  int64_t b = node.attrs.get_int("blocksize");
  return [b](const KernelContext&, const Tensors& in) -> Tensors {
    int64_t n = in[0].size(0), c = in[0].size(1), h = in[0].size(2), w = in[0].size(3);
    at::Tensor t = in[0].reshape({n, c, h / b, b, w / b, b}).permute({0, 3, 5, 1, 2, 4});
    return {t.reshape({n, c * b * b, h / b, w / b})};
  };
}

std::vector<TensorType> infer_block(const InferContext& ctx, bool to_space) {
  TensorType x = ctx.input(0);
  if (!x.has_shape) return {x};
  SHRINK_CHECK(x.rank() == 4, "input must be 4-D, got ", x.to_string());
  int64_t b = ctx.node.attrs.get_int("blocksize");
  SHRINK_CHECK(b >= 1 && b <= (int64_t{1} << 20), "blocksize must be from 1 to 2^20, got ", b);
  if (to_space && x.dims[1] != kDynamic)
    SHRINK_CHECK(x.dims[1] % (b * b) == 0, "input channels ", x.dims[1], " are not divisible by blocksize^2 = ", b * b);
  if (!to_space)
    for (int i = 2; i < 4; ++i)
      SHRINK_CHECK(x.dims[i] == kDynamic || x.dims[i] % b == 0, "input extent ", x.dims[i],
                   " is not divisible by blocksize ", b);
  auto scale = [](int64_t d, int64_t num, int64_t den) {
    return d == kDynamic ? d : extent_product(d, num) / den;
  };
  x.dims[1] = to_space ? scale(x.dims[1], 1, b * b) : scale(x.dims[1], b * b, 1);
  for (int i = 2; i < 4; ++i) x.dims[i] = to_space ? scale(x.dims[i], b, 1) : scale(x.dims[i], 1, b);
  return {x};
}

}  // namespace

void register_shape_ops(OpRegistry& r) {
  r.add(make_op("Reshape", 2, 2, infer_reshape, make_reshape));
  r.add(make_op("Flatten", 1, 1, infer_flatten, make_flatten));
  r.add(make_op("Transpose", 1, 1, infer_transpose, [](const ir::Node& node) -> Kernel {
    std::vector<int64_t> perm = node.attrs.get_ints("perm");
    return [perm](const KernelContext&, const Tensors& in) -> Tensors {
      std::vector<int64_t> p = perm;
      if (p.empty())
        for (int64_t i = in[0].dim() - 1; i >= 0; --i) p.push_back(i);
      return {in[0].permute(p)};
    };
  }));
  r.add(make_op("Concat", 1, 1 << 20, infer_concat, [](const ir::Node& node) -> Kernel {
    int64_t axis = node.attrs.get_int("axis");
    return [axis](const KernelContext&, const Tensors& in) -> Tensors { return {at::cat(in, axis)}; };
  }));
  r.add(make_op("Split", 1, 2, infer_split, make_split));
  r.add(make_op("Slice", 3, 5, infer_slice, make_slice));
  r.add(make_op("Squeeze", 1, 2, infer_squeeze, make_squeeze));
  r.add(make_op("Unsqueeze", 2, 2, infer_unsqueeze, make_unsqueeze));
  r.add(make_op("Expand", 2, 2, infer_expand, make_expand));
  r.add(make_op("Tile", 2, 2, infer_tile, simple_kernel([](const Tensors& in) {
              return in[0].repeat(to_ints(in[1]));
            })));
  r.add(make_op("Pad", 2, 4, infer_pad, make_pad));
  r.add(make_op("DepthToSpace", 1, 1, [](const InferContext& c) { return infer_block(c, true); },
            make_depth_to_space));
  r.add(make_op("SpaceToDepth", 1, 1, [](const InferContext& c) { return infer_block(c, false); },
            make_space_to_depth));
}

}  // namespace shrink::ops
