// Gemm (transA, transB, alpha, beta) and MatMul (numpy semantics).
#include "shrink/ops/common.h"
#include "shrink/ops/dnnl_kernels.h"
#include "shrink/ops/sgemm.h"

namespace shrink::ops {
namespace {

std::vector<TensorType> infer_gemm(const InferContext& ctx) {
  const TensorType& a = ctx.input(0);
  const TensorType& b = ctx.input(1);
  if (!a.has_shape || !b.has_shape) return {unknown_dims(a.dtype, 2)};
  SHRINK_CHECK(a.rank() == 2 && b.rank() == 2, "Gemm needs 2-D A and B, got ", a.to_string(),
               " and ", b.to_string());
  bool ta = ctx.node.attrs.get_int("transA", 0), tb = ctx.node.attrs.get_int("transB", 0);
  int64_t m = a.dims[ta ? 1 : 0], ka = a.dims[ta ? 0 : 1];
  int64_t kb = b.dims[tb ? 1 : 0], n = b.dims[tb ? 0 : 1];
  SHRINK_CHECK(ka == kDynamic || kb == kDynamic || ka == kb, "inner dimensions differ: A ",
               a.to_string(), " (transA=", ta, "), B ", b.to_string(), " (transB=", tb, ")");
  return {TensorType::of(a.dtype, {m, n})};
}

Kernel make_gemm(const ir::Node& node) {
  bool ta = node.attrs.get_int("transA", 0), tb = node.attrs.get_int("transB", 0);
  double alpha = node.attrs.get_float("alpha", 1.0f), beta = node.attrs.get_float("beta", 1.0f);
  return [=](const KernelContext&, const Tensors& in) -> Tensors {
    at::Tensor a = ta ? in[0].t() : in[0];
    bool has_c = in.size() > 2 && in[2].defined() && beta != 0.0;
    // The common nn.Linear form maps onto one fused call.
    if (tb && alpha == 1.0 && (!has_c || beta == 1.0) && !ta)
      return {ops::dense_linear(a, in[1], has_c ? in[2] : at::Tensor())};
    at::Tensor b = tb ? in[1].t() : in[1];
    if (!has_c) return {alpha == 1.0 ? ops::dense_mm(a, b) : ops::dense_mm(a, b) * alpha};
    at::Tensor c = in[2].dim() == 2 ? in[2] : in[2].expand({a.size(0), b.size(1)});
    return {at::addmm(c, a, b, beta, alpha)};
  };
}

std::vector<TensorType> infer_matmul(const InferContext& ctx) {
  const TensorType& a = ctx.input(0);
  const TensorType& b = ctx.input(1);
  if (!a.has_shape || !b.has_shape) return {TensorType::unknown(a.dtype)};
  SHRINK_CHECK(a.rank() >= 1 && b.rank() >= 1, "MatMul inputs must not be scalars");
  std::vector<int64_t> da = a.dims, db = b.dims;
  if (da.size() == 1) da.insert(da.begin(), 1);
  if (db.size() == 1) db.push_back(1);
  int64_t ka = da.back(), kb = db[db.size() - 2];
  SHRINK_CHECK(ka == kDynamic || kb == kDynamic || ka == kb, "inner dimensions differ: ",
               a.to_string(), " x ", b.to_string());
  TensorType batch_a = TensorType::of(a.dtype, {da.begin(), da.end() - 2});
  TensorType batch_b = TensorType::of(a.dtype, {db.begin(), db.end() - 2});
  TensorType out = broadcast_types(batch_a, batch_b, a.dtype);
  if (a.rank() > 1) out.dims.push_back(da[da.size() - 2]);
  if (b.rank() > 1) out.dims.push_back(db.back());
  return {out};
}

// numpy matmul; a stack of rows times a matrix (the common Linear-as-MatMul export) is
// one 2-D product.
at::Tensor numpy_matmul(const at::Tensor& a, const at::Tensor& b) {
  if (a.dim() >= 2 && b.dim() == 2 && a.size(-1) == b.size(0)) {
    if (a.dim() == 2) return ops::dense_mm(a, b);
    std::vector<int64_t> out(a.sizes().begin(), a.sizes().end());
    out.back() = b.size(1);
    return ops::dense_mm(a.reshape({-1, a.size(-1)}), b).view(out);
  }
  return ops::batched_matmul_inference(a, b);
}

}  // namespace

void register_linear_ops(OpRegistry& r) {
  OpDef gemm;
  gemm.name = "Gemm";
  gemm.min_inputs = 2;
  gemm.max_inputs = 3;
  gemm.param_inputs = {1, 2};
  gemm.infer = infer_gemm;
  gemm.make_kernel = make_gemm;
  r.add(gemm);

  OpDef matmul;
  matmul.name = "MatMul";
  matmul.min_inputs = matmul.max_inputs = 2;
  matmul.param_inputs = {0, 1};
  matmul.infer = infer_matmul;
  matmul.make_kernel = simple_kernel([](const Tensors& in) { return numpy_matmul(in[0], in[1]); });
  r.add(matmul);

  // Einsum: ATen's, which follows the same equation grammar (letters, "...", "->").
  // The shape comes from running it on meta tensors of the inputs' extents.
  OpDef einsum;
  einsum.name = "Einsum";
  einsum.min_inputs = 1;
  einsum.max_inputs = 64;
  einsum.infer = [](const InferContext& ctx) -> std::vector<TensorType> {
    std::vector<at::Tensor> meta;
    at::ScalarType t = ctx.input(0).dtype;
    for (size_t i = 0; i < ctx.inputs.size(); ++i) {
      if (!ctx.input(i).is_static()) return {TensorType::unknown(t)};
      meta.push_back(at::empty(ctx.input(i).dims, at::TensorOptions().dtype(ctx.input(i).dtype).device(at::kMeta)));
    }
    at::Tensor y;
    try {
      y = at::einsum(ctx.node.attrs.get_string("equation", ""), meta);
    } catch (const c10::Error& e) {
      fail(ctx.node.describe(), ": equation '", ctx.node.attrs.get_string("equation", ""), "' does not apply to inputs ",
           at::IntArrayRef(ctx.input(0).dims), ctx.inputs.size() > 1 ? " and the rest" : "", ": ",
           e.what_without_backtrace());
    }
    return {TensorType::of(t, y.sizes().vec())};
  };
  einsum.make_kernel = [](const ir::Node& node) -> Kernel {
    std::string equation = node.attrs.get_string("equation", "");
    return [equation](const KernelContext&, const Tensors& in) -> Tensors { return {at::einsum(equation, in)}; };
  };
  r.add(einsum);
}

}  // namespace shrink::ops
