#include "shrink/ops/sgemm.h"

#include <dnnl.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cstdlib>
#include <cstring>

#include "shrink/core/error.h"

namespace shrink::ops {
namespace {

bool onednn_enabled() {
  static const bool enabled = [] {
    const char* env = std::getenv("SHRINK_SGEMM");
    return !(env && std::strcmp(env, "aten") == 0);
  }();
  return enabled;
}

// How a 2-D operand is laid out for a row-major sgemm: 'N' with leading dimension
// stride(0) when rows are contiguous, 'T' (the transpose is row-major) with stride(1)
// when columns are.
struct Operand {
  at::Tensor t;
  char trans;
  int64_t ld;
};

Operand operand(const at::Tensor& t) {
  const int64_t rows = t.size(0), cols = t.size(1);
  if (t.stride(1) == 1 && t.stride(0) >= std::max<int64_t>(1, cols)) return {t, 'N', t.stride(0)};
  if (t.stride(0) == 1 && t.stride(1) >= std::max<int64_t>(1, rows)) return {t, 'T', t.stride(1)};
  at::Tensor c = t.contiguous();
  return {c, 'N', std::max<int64_t>(1, cols)};
}

// c = a @ b with no autograd: oneDNN for float32, at::mm otherwise.
at::Tensor mm_kernel(const at::Tensor& a, const at::Tensor& b) {
  if (!uses_onednn(a, b)) return at::mm(a, b);
  const int64_t m = a.size(0), k = a.size(1), n = b.size(1);
  at::Tensor c = at::empty({m, n}, a.options());
  if (m == 0 || n == 0) return c;
  if (k == 0) return c.zero_();
  Operand oa = operand(a), ob = operand(b);
  dnnl_status_t status = dnnl_sgemm(oa.trans, ob.trans, m, n, k, 1.0f, oa.t.data_ptr<float>(), oa.ld,
                                    ob.t.data_ptr<float>(), ob.ld, 0.0f, c.data_ptr<float>(), n);
  SHRINK_CHECK(status == dnnl_success, "oneDNN sgemm failed (status ", static_cast<int>(status), ") for ", m,
               "x", k, " @ ", k, "x", n);
  return c;
}

// lhs @ rhs laid out like `like` (the input whose gradient it is): computed transposed
// when `like` is the transpose of a contiguous matrix. Gemm's weight enters as the view
// w.t(); its gradient as a plain product would reach w transposed, and every optimizer
// pass over it (weight decay, momentum, the update) would run ATen's scalar strided loop:
// a third of an MLP training step.
at::Tensor product_like(const at::Tensor& lhs, const at::Tensor& rhs, const at::Tensor& like) {
  const bool column_major = !like.is_contiguous() && like.t().is_contiguous();
  return column_major ? dense_mm(rhs.t(), lhs.t()).t() : dense_mm(lhs, rhs);
}

// The product as an autograd node. Its backward is two more products through dense_mm(), so it is
// itself differentiable (double backward, Hessian-vector products).
struct MatMul : public torch::autograd::Function<MatMul> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& a, const at::Tensor& b) {
    ctx->save_for_backward({a, b});
    return mm_kernel(a, b);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor& a = saved[0];
    const at::Tensor& b = saved[1];
    const at::Tensor& g = grads[0];
    at::Tensor ga, gb;
    if (ctx->needs_input_grad(0)) ga = product_like(g, b.t(), a);
    if (ctx->needs_input_grad(1)) gb = product_like(a.t(), g, b);
    return {ga, gb};
  }
};

}  // namespace

bool uses_onednn(const at::Tensor& a, const at::Tensor& b) {
  return onednn_enabled() && a.dim() == 2 && b.dim() == 2 && a.scalar_type() == at::kFloat &&
         b.scalar_type() == at::kFloat && a.device().is_cpu() && b.device().is_cpu() && a.layout() == at::kStrided &&
         b.layout() == at::kStrided && !a.is_neg() && !b.is_neg() && !a.is_conj() && !b.is_conj() &&
         a.size(1) == b.size(0);
}

at::Tensor dense_mm(const at::Tensor& a, const at::Tensor& b) {
  if (!uses_onednn(a, b)) return at::mm(a, b);
  if (at::GradMode::is_enabled() && (a.requires_grad() || b.requires_grad())) return MatMul::apply(a, b);
  return mm_kernel(a, b);
}

at::Tensor dense_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias) {
  if (x.dim() != 2 || !uses_onednn(x, w.t())) return at::linear(x, w, bias);
  at::Tensor y = dense_mm(x, w.t());
  if (!bias.defined()) return y;
  const bool graph = at::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad() || bias.requires_grad());
  return graph ? y + bias : y.add_(bias);
}

}  // namespace shrink::ops
