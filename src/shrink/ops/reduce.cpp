// Reductions: ReduceMean, ReduceSum, ReduceMax, ReduceMin, ReduceProd, ReduceL1,
// ReduceL2, ReduceLogSum, ReduceLogSumExp, ReduceSumSquare; ArgMax and ArgMin.
#include "shrink/ops/common.h"

namespace shrink::ops {
namespace {

using ReduceFn = std::function<at::Tensor(const at::Tensor&, at::IntArrayRef, bool)>;

// Axes come from the `axes` attribute or, where the opset moved them, input 1.
bool reduce_axes(const InferContext& ctx, std::vector<int64_t>& axes) {
  if (ctx.has_input(1)) return ctx.constant_ints(1, axes);
  axes = ctx.node.attrs.get_ints("axes");
  return true;
}

std::vector<TensorType> infer_reduce(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  bool keep = ctx.node.attrs.get_int("keepdims", 1) != 0;
  bool noop = ctx.node.attrs.get_int("noop_with_empty_axes", 0) != 0;
  std::vector<int64_t> axes;
  if (!x.has_shape) return {x};
  if (!reduce_axes(ctx, axes)) return {keep ? unknown_dims(x.dtype, x.rank()) : TensorType::unknown(x.dtype)};
  if (axes.empty() && noop) return {x};
  std::vector<bool> reduced(x.rank(), axes.empty());
  for (int64_t a : axes) reduced[normalize_axis(a, x.rank())] = true;
  TensorType out = TensorType::of(x.dtype, {});
  for (int64_t i = 0; i < x.rank(); ++i) {
    if (!reduced[i]) out.dims.push_back(x.dims[i]);
    else if (keep) out.dims.push_back(1);
  }
  return {out};
}

OpDef reduce(const std::string& name, ReduceFn fn) {
  OpDef d;
  d.name = name;
  d.max_inputs = 2;
  d.infer = infer_reduce;
  d.make_kernel = [fn](const ir::Node& node) -> Kernel {
    bool keep = node.attrs.get_int("keepdims", 1) != 0;
    bool noop = node.attrs.get_int("noop_with_empty_axes", 0) != 0;
    std::vector<int64_t> attr_axes = node.attrs.get_ints("axes");
    return [=](const KernelContext&, const Tensors& in) -> Tensors {
      const at::Tensor& x = in[0];
      std::vector<int64_t> axes = in.size() > 1 && in[1].defined() ? to_ints(in[1]) : attr_axes;
      if (axes.empty() && noop) return {x.clone()};
      if (axes.empty())
        for (int64_t i = 0; i < x.dim(); ++i) axes.push_back(i);
      for (int64_t& a : axes) a = normalize_axis(a, x.dim());
      return {fn(x, axes, keep).to(x.scalar_type())};
    };
  };
  return d;
}

at::Tensor prod(const at::Tensor& x, at::IntArrayRef axes, bool keep) {
  std::vector<int64_t> sorted(axes.begin(), axes.end());
  std::sort(sorted.rbegin(), sorted.rend());
  at::Tensor y = x;
  for (int64_t a : sorted) y = y.prod(a, keep);
  return y;
}

OpDef arg_reduce(const std::string& name, bool is_max) {
  OpDef d;
  d.name = name;
  d.infer = [](const InferContext& ctx) -> std::vector<TensorType> {
    TensorType x = ctx.input(0);
    x.dtype = at::kLong;
    if (!x.has_shape) return {x};
    int64_t axis = normalize_axis(ctx.node.attrs.get_int("axis", 0), x.rank());
    if (ctx.node.attrs.get_int("keepdims", 1)) x.dims[axis] = 1;
    else x.dims.erase(x.dims.begin() + axis);
    x.dim_names.clear();
    return {x};
  };
  d.make_kernel = [is_max](const ir::Node& node) -> Kernel {
    int64_t axis = node.attrs.get_int("axis", 0);
    bool keep = node.attrs.get_int("keepdims", 1) != 0;
    bool last = node.attrs.get_int("select_last_index", 0) != 0;
    return [=](const KernelContext&, const Tensors& in) -> Tensors {
      int64_t a = normalize_axis(axis, in[0].dim());
      if (!last) return {is_max ? in[0].argmax(a, keep) : in[0].argmin(a, keep)};
      // Last occurrence: search the flipped tensor and map the index back.
      at::Tensor flipped = in[0].flip(a);
      at::Tensor idx = is_max ? flipped.argmax(a, keep) : flipped.argmin(a, keep);
      return {in[0].size(a) - 1 - idx};
    };
  };
  return d;
}

}  // namespace

void register_reduce_ops(OpRegistry& r) {
  r.add(reduce("ReduceSum", [](auto& x, auto a, bool k) { return x.sum(a, k); }));
  r.add(reduce("ReduceMean", [](auto& x, auto a, bool k) { return x.mean(a, k); }));
  r.add(reduce("ReduceMax", [](auto& x, auto a, bool k) { return x.amax(a, k); }));
  r.add(reduce("ReduceMin", [](auto& x, auto a, bool k) { return x.amin(a, k); }));
  r.add(reduce("ReduceProd", prod));
  r.add(reduce("ReduceL1", [](auto& x, auto a, bool k) { return x.abs().sum(a, k); }));
  r.add(reduce("ReduceL2", [](auto& x, auto a, bool k) { return (x * x).sum(a, k).sqrt(); }));
  r.add(reduce("ReduceSumSquare", [](auto& x, auto a, bool k) { return (x * x).sum(a, k); }));
  r.add(reduce("ReduceLogSum", [](auto& x, auto a, bool k) { return x.sum(a, k).log(); }));
  r.add(reduce("ReduceLogSumExp", [](auto& x, auto a, bool k) { return at::logsumexp(x, a, k); }));
  r.add(arg_reduce("ArgMax", true));
  r.add(arg_reduce("ArgMin", false));
}

}  // namespace shrink::ops
