// Tensor creation and indexing: Constant, ConstantOfShape, Shape, Size, Gather,
// GatherElements, ScatterND, ScatterElements, Cast, CastLike, Range.
#include "shrink/ops/common.h"

#include <cmath>

#include "shrink/core/limits.h"

namespace shrink::ops {
namespace {

// The value of a Constant node, whichever attribute holds it.
at::Tensor constant_value(const ir::Node& node) {
  const ir::Attributes& a = node.attrs;
  if (a.has("value")) return a.get_tensor("value");
  if (a.has("value_float")) return at::scalar_tensor(a.get_float("value_float", 0), at::kFloat);
  if (a.has("value_floats")) return at::tensor(a.get_floats("value_floats"), at::kFloat);
  if (a.has("value_int")) return at::scalar_tensor(a.get_int("value_int"), at::kLong);
  if (a.has("value_ints")) return at::tensor(a.get_ints("value_ints"), at::kLong);
  fail("Constant has no value attribute (value, value_float(s) or value_int(s))");
}

std::vector<TensorType> infer_gather(const InferContext& ctx) {
  const TensorType& data = ctx.input(0);
  const TensorType& idx = ctx.input(1);
  if (!data.has_shape || !idx.has_shape) return {TensorType::unknown(data.dtype)};
  int64_t axis = normalize_axis(ctx.node.attrs.get_int("axis", 0), data.rank());
  std::vector<int64_t> out(data.dims.begin(), data.dims.begin() + axis);
  out.insert(out.end(), idx.dims.begin(), idx.dims.end());
  out.insert(out.end(), data.dims.begin() + axis + 1, data.dims.end());
  return {TensorType::of(data.dtype, out)};
}

Kernel make_gather(const ir::Node& node) {
  int64_t axis = node.attrs.get_int("axis", 0);
  return [axis](const KernelContext&, const Tensors& in) -> Tensors {
    const at::Tensor& data = in[0];
    int64_t a = normalize_axis(axis, data.dim());
    at::Tensor idx = in[1].to(at::kLong);
    idx = at::where(idx < 0, idx + data.size(a), idx);  // ONNX allows negative indices
    std::vector<int64_t> shape(data.sizes().begin(), data.sizes().begin() + a);
    shape.insert(shape.end(), idx.sizes().begin(), idx.sizes().end());
    shape.insert(shape.end(), data.sizes().begin() + a + 1, data.sizes().end());
    return {data.index_select(a, idx.reshape({-1})).reshape(shape)};
  };
}

Kernel make_gather_elements(const ir::Node& node) {
  int64_t axis = node.attrs.get_int("axis", 0);
  return [axis](const KernelContext&, const Tensors& in) -> Tensors {
    int64_t a = normalize_axis(axis, in[0].dim());
    at::Tensor idx = in[1].to(at::kLong);
    idx = at::where(idx < 0, idx + in[0].size(a), idx);
    return {at::gather(in[0], a, idx)};
  };
}

// ONNX's reduction attribute (opset 16: none, add, mul; 18: max, min) as ATen's name.
std::string scatter_reduction(const ir::Node& node) {
  const std::string r = node.attrs.get_string("reduction", "none");
  if (r == "none") return "";
  if (r == "add") return "sum";
  if (r == "mul") return "prod";
  if (r == "max") return "amax";
  if (r == "min") return "amin";
  fail(node.describe(), ": reduction '", r, "' is not none, add, mul, max or min");
}

// ScatterND: updates[i...] goes to data[indices[i...]], indices' last axis indexing
// the first k axes of data.
Kernel make_scatter_nd(const ir::Node& node) {
  return [reduce = scatter_reduction(node), where = node.describe()](const KernelContext&, const Tensors& in) -> Tensors {
    const at::Tensor& data = in[0];
    at::Tensor idx = in[1].to(at::kLong);
    const at::Tensor& upd = in[2];
    SHRINK_CHECK(idx.dim() >= 1, where, ": indices must have rank >= 1");
    const int64_t k = idx.size(-1);
    SHRINK_CHECK(k <= data.dim(), where, ": indices index ", k, " axes of a rank-", data.dim(), " tensor");
    std::vector<int64_t> want(idx.sizes().begin(), idx.sizes().end() - 1);
    want.insert(want.end(), data.sizes().begin() + k, data.sizes().end());
    SHRINK_CHECK(upd.sizes().vec() == want, where, ": updates are ", at::IntArrayRef(upd.sizes()), ", expected ",
                 at::IntArrayRef(want));
    int64_t outer = 1, inner = 1;
    for (int64_t a = 0; a < k; ++a) outer *= data.size(a);
    for (int64_t a = k; a < data.dim(); ++a) inner *= data.size(a);
    at::Tensor flat_idx = idx.reshape({-1, k});
    at::Tensor lin = at::zeros({flat_idx.size(0)}, at::kLong);
    for (int64_t a = 0; a < k; ++a) {
      at::Tensor i = flat_idx.select(1, a);
      i = at::where(i < 0, i + data.size(a), i);
      SHRINK_CHECK(i.numel() == 0 || (i.min().item<int64_t>() >= 0 && i.max().item<int64_t>() < data.size(a)), where,
                   ": an index on axis ", a, " is outside [0, ", data.size(a), ")");
      lin = lin * data.size(a) + i;
    }
    at::Tensor out = data.clone().reshape({outer, inner});
    at::Tensor src = upd.reshape({-1, inner}).to(data.scalar_type());
    if (reduce.empty()) out.index_copy_(0, lin, src);
    else if (reduce == "sum") out.index_add_(0, lin, src);  // index_reduce has no sum
    else out.index_reduce_(0, lin, src, reduce, true);
    return {out.reshape(data.sizes())};
  };
}

Kernel make_scatter_elements(const ir::Node& node) {
  int64_t axis = node.attrs.get_int("axis", 0);
  return [axis, reduce = scatter_reduction(node), where = node.describe()](const KernelContext&,
                                                                          const Tensors& in) -> Tensors {
    const at::Tensor& data = in[0];
    int64_t a = normalize_axis(axis, data.dim());
    at::Tensor idx = in[1].to(at::kLong);
    idx = at::where(idx < 0, idx + data.size(a), idx);
    SHRINK_CHECK(idx.numel() == 0 || (idx.min().item<int64_t>() >= 0 && idx.max().item<int64_t>() < data.size(a)),
                 where, ": an index is outside [0, ", data.size(a), ")");
    at::Tensor src = in[2].to(data.scalar_type());
    if (reduce.empty()) return {data.scatter(a, idx, src)};
    if (reduce == "sum") return {data.scatter_add(a, idx, src)};
    return {data.scatter_reduce(a, idx, src, reduce, true)};
  };
}

// CumSum (opset 11/14): the running sum along `axis`; `exclusive` leaves out the
// element itself, `reverse` sums from the end.
Kernel make_cumsum(const ir::Node& node) {
  bool exclusive = node.attrs.get_int("exclusive", 0) != 0, reverse = node.attrs.get_int("reverse", 0) != 0;
  return [exclusive, reverse, where = node.describe()](const KernelContext&, const Tensors& in) -> Tensors {
    const at::Tensor& x = in[0];
    SHRINK_CHECK(in[1].numel() == 1, where, ": axis must hold one value, got ", in[1].numel());
    SHRINK_CHECK(x.dim() >= 1, where, ": input must have at least one dimension");
    int64_t a = normalize_axis(in[1].reshape({}).item<int64_t>(), x.dim());
    at::Tensor y = reverse ? x.flip(a) : x;
    at::Tensor sum = y.cumsum(a, x.scalar_type());
    if (exclusive) sum = sum - y;
    return {reverse ? sum.flip(a) : sum};
  };
}

// Compress (opset 9/11): the slices along `axis` (of the flattened input without it)
// whose condition is true; a condition shorter than the axis drops the rest.
std::vector<TensorType> infer_compress(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  bool has_axis = ctx.node.attrs.has("axis");
  int64_t rank = has_axis ? x.rank() : 1;
  if (!x.has_shape) return {has_axis ? TensorType::unknown(x.dtype) : unknown_dims(x.dtype, 1)};
  TensorType out = has_axis ? x : unknown_dims(x.dtype, 1);
  int64_t a = has_axis ? normalize_axis(ctx.node.attrs.get_int("axis"), rank) : 0;
  out.dims[a] = -1;
  if (a < static_cast<int64_t>(out.dim_names.size())) out.dim_names[a].clear();
  if (const at::Tensor* c = ctx.constant(1)) out.dims[a] = c->ne(0).sum().item<int64_t>();
  return {out};
}

Kernel make_compress(const ir::Node& node) {
  bool has_axis = node.attrs.has("axis");
  int64_t axis = node.attrs.get_int("axis", 0);
  return [has_axis, axis, where = node.describe()](const KernelContext&, const Tensors& in) -> Tensors {
    at::Tensor x = has_axis ? in[0] : in[0].reshape({-1});
    SHRINK_CHECK(x.dim() >= 1, where, ": input must have at least one dimension");
    int64_t a = has_axis ? normalize_axis(axis, x.dim()) : 0;
    at::Tensor c = in[1].reshape({-1}).ne(0);
    SHRINK_CHECK(c.numel() <= x.size(a), where, ": condition has ", c.numel(), " values, the axis only ", x.size(a));
    return {x.index_select(a, c.nonzero().view(-1))};
  };
}

std::vector<TensorType> infer_shape(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  if (!x.has_shape) return {unknown_dims(at::kLong, 1)};
  int64_t start = ctx.node.attrs.get_int("start", 0), end = ctx.node.attrs.get_int("end", x.rank());
  start = std::clamp<int64_t>(start < 0 ? start + x.rank() : start, 0, x.rank());
  end = std::clamp<int64_t>(end < 0 ? end + x.rank() : end, 0, x.rank());
  return {TensorType::of(at::kLong, {std::max<int64_t>(0, end - start)})};
}

Kernel make_shape(const ir::Node& node) {
  bool has_start = node.attrs.has("start"), has_end = node.attrs.has("end");
  int64_t start0 = node.attrs.get_int("start", 0), end0 = node.attrs.get_int("end", 0);
  return [=](const KernelContext&, const Tensors& in) -> Tensors {
    int64_t rank = in[0].dim();
    int64_t start = has_start ? start0 : 0, end = has_end ? end0 : rank;
    start = std::clamp<int64_t>(start < 0 ? start + rank : start, 0, rank);
    end = std::clamp<int64_t>(end < 0 ? end + rank : end, 0, rank);
    std::vector<int64_t> dims(in[0].sizes().begin() + start, in[0].sizes().begin() + std::max(start, end));
    return {at::tensor(dims, at::kLong)};
  };
}

// ceil((limit - start) / delta), at least 0: ONNX's element count for Range. A zero,
// NaN or infinite step or bound has no count (the cast would be undefined), and the
// count must fit the tensor cap.
int64_t range_length(double start, double limit, double delta, at::ScalarType t, const std::string& node) {
  SHRINK_CHECK(std::isfinite(start) && std::isfinite(limit) && std::isfinite(delta) && delta != 0,
               node, ": start, limit and delta must be finite and delta non-zero, got ", start, ", ",
               limit, ", ", delta);
  const double n = std::max(0.0, std::ceil((limit - start) / delta));
  SHRINK_CHECK(n < 9.0e18, node, ": ", n, " elements is too many");
  const auto count = static_cast<int64_t>(n);
  checked_tensor_bytes({count}, static_cast<int64_t>(c10::elementSize(t)), node);
  return count;
}

std::vector<TensorType> infer_range(const InferContext& ctx) {
  at::ScalarType t = ctx.input(0).dtype;
  const at::Tensor *s = ctx.constant(0), *l = ctx.constant(1), *d = ctx.constant(2);
  if (!s || !l || !d) return {unknown_dims(t, 1)};
  double start = s->item<double>(), limit = l->item<double>(), delta = d->item<double>();
  return {TensorType::of(t, {range_length(start, limit, delta, t, ctx.node.describe())})};
}

Kernel make_range(const ir::Node& node) {
  return [where = node.describe()](const KernelContext&, const Tensors& in) -> Tensors {
    at::ScalarType t = in[0].scalar_type();
    double start = in[0].item<double>(), limit = in[1].item<double>(), delta = in[2].item<double>();
    int64_t n = range_length(start, limit, delta, t, where);
    // start + i * delta, as ONNX defines it (at::arange may differ in the last element).
    at::Tensor i = at::arange(n, at::TensorOptions().dtype(at::kDouble));
    return {(i * delta + start).to(t)};
  };
}

}  // namespace

void register_tensor_ops(OpRegistry& r) {
  r.add(make_op("Constant", 0, 0,
            [](const InferContext& ctx) -> std::vector<TensorType> {
              at::Tensor v = constant_value(ctx.node);
              return {TensorType::of(v.scalar_type(), v.sizes().vec())};
            },
            [](const ir::Node& node) -> Kernel {
              at::Tensor v = constant_value(node);
              return [v](const KernelContext&, const Tensors&) -> Tensors { return {v}; };
            }));

  r.add(make_op("ConstantOfShape", 1, 1,
            [](const InferContext& ctx) -> std::vector<TensorType> {
              at::ScalarType t = ctx.node.attrs.has("value")
                                     ? ctx.node.attrs.get_tensor("value").scalar_type() : at::kFloat;
              std::vector<int64_t> shape;
              if (ctx.constant_ints(0, shape)) return {TensorType::of(t, shape)};
              const TensorType& s = ctx.input(0);
              return {s.is_static() ? unknown_dims(t, s.dims[0]) : TensorType::unknown(t)};
            },
            [](const ir::Node& node) -> Kernel {
              at::Tensor value = node.attrs.has("value") ? node.attrs.get_tensor("value").reshape({})
                                                         : at::scalar_tensor(0.0, at::kFloat);
              return [value](const KernelContext&, const Tensors& in) -> Tensors {
                return {at::full(to_ints(in[0]), value.item(), value.options())};
              };
            }));

  r.add(make_op("Shape", 1, 1, infer_shape, make_shape));
  r.add(make_op("Size", 1, 1,
            [](const InferContext&) -> std::vector<TensorType> { return {TensorType::of(at::kLong, {})}; },
            simple_kernel([](const Tensors& in) { return at::scalar_tensor(in[0].numel(), at::kLong); })));
  r.add(make_op("Gather", 2, 2, infer_gather, make_gather));
  r.add(make_op("GatherElements", 2, 2,
            [](const InferContext& ctx) -> std::vector<TensorType> {
              TensorType t = ctx.input(1);
              t.dtype = ctx.input(0).dtype;
              return {t};
            },
            make_gather_elements));
  auto same_as_data = [](const InferContext& ctx) -> std::vector<TensorType> { return {ctx.input(0)}; };
  r.add(make_op("ScatterND", 3, 3, same_as_data, make_scatter_nd));
  r.add(make_op("ScatterElements", 3, 3, same_as_data, make_scatter_elements));
  r.add(make_op("CumSum", 2, 2, same_as_data, make_cumsum));
  r.add(make_op("Compress", 2, 2, infer_compress, make_compress));

  r.add(make_op("Cast", 1, 1,
            [](const InferContext& ctx) -> std::vector<TensorType> {
              TensorType t = ctx.input(0);
              t.dtype = ir::scalar_type_from_onnx(static_cast<int>(ctx.node.attrs.get_int("to")));
              return {t};
            },
            [](const ir::Node& node) -> Kernel {
              at::ScalarType to = ir::scalar_type_from_onnx(static_cast<int>(node.attrs.get_int("to")));
              return [to](const KernelContext&, const Tensors& in) -> Tensors { return {in[0].to(to)}; };
            }));
  r.add(make_op("CastLike", 2, 2,
            [](const InferContext& ctx) -> std::vector<TensorType> {
              TensorType t = ctx.input(0);
              t.dtype = ctx.input(1).dtype;
              return {t};
            },
            simple_kernel([](const Tensors& in) { return in[0].to(in[1].scalar_type()); })));

  r.add(make_op("Range", 3, 3, infer_range, make_range));
}

}  // namespace shrink::ops
