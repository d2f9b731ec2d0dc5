// The oneDNN inference kernels against ATen in double precision, for the layouts the
// executor hands them (transposed views, broadcast batches, a lone matrix), and the ATen
// path kept where a gradient is needed.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "shrink/ops/dnnl_kernels.h"

using namespace shrink;

namespace {

double max_error(const at::Tensor& got, const at::Tensor& want) {
  return (got.to(at::kDouble) - want).abs().max().item<double>();
}

}  // namespace

TEST(DnnlKernels, BatchedMatmulMatchesATenInDoubleForEveryLayout) {
  at::manual_seed(0);
  struct Case {
    at::Tensor a, b;
    const char* what;
  };
  at::Tensor k = at::randn({2, 4, 50, 16});
  at::Tensor wide = at::randn({3, 5, 12});
  std::vector<Case> cases = {
      {at::randn({2, 4, 50, 16}), k.transpose(-1, -2), "attention Q K^T (K transposed view)"},
      {at::randn({2, 4, 50, 50}), at::randn({2, 4, 50, 16}), "attention A V"},
      {at::randn({2, 50, 4, 16}).permute({0, 2, 1, 3}), k.transpose(-1, -2), "Q as a permuted view"},
      {at::randn({1, 5, 7}), at::randn({6, 7, 3}), "broadcast batch of a"},
      {at::randn({4, 1, 5, 7}), at::randn({3, 7, 2}), "broadcast in both"},
      {at::randn({5, 7}), at::randn({3, 7, 2}), "matrix times a batch"},
      {at::randn({1, 1, 9}), at::randn({1, 9, 1}), "a lone 1x9 by 9x1"},
      {wide.slice(2, 0, 12, 2), at::randn({3, 6, 4}), "strided columns (copied)"},
  };
  for (const Case& c : cases) {
    at::Tensor want = at::matmul(c.a.to(at::kDouble), c.b.to(at::kDouble));
    at::Tensor got = ops::batched_matmul_inference(c.a, c.b);
    ASSERT_EQ(got.sizes(), want.sizes()) << c.what;
    EXPECT_LE(max_error(got, want), 1e-4) << c.what;
  }
  // A hand computation: [[1 2] [3 4]] x [[1 0] [1 1]] = [[3 2] [7 4]], batch of two.
  at::Tensor a = at::tensor({1.f, 2.f, 3.f, 4.f}).view({1, 2, 2}).repeat({2, 1, 1});
  at::Tensor b = at::tensor({1.f, 0.f, 1.f, 1.f}).view({2, 2});
  at::Tensor y = ops::batched_matmul_inference(a, b.expand({2, 2, 2}));
  EXPECT_TRUE(at::equal(y[1], at::tensor({3.f, 2.f, 7.f, 4.f}).view({2, 2})));
}

TEST(DnnlKernels, SoftmaxAndLogSoftmaxMatchATenOnEveryAxis) {
  at::manual_seed(1);
  at::Tensor x = at::randn({3, 4, 50, 7}) * 5;
  for (int64_t axis = 0; axis < 4; ++axis)
    for (bool log : {false, true}) {
      at::Tensor xd = x.to(at::kDouble);
      at::Tensor want = log ? at::log_softmax(xd, axis) : at::softmax(xd, axis);
      EXPECT_LE(max_error(ops::softmax_inference(x, axis, log), want), 1e-5) << "axis " << axis << " log " << log;
      EXPECT_LE(max_error(ops::softmax_inference(x.transpose(1, 3), axis, log),
                          log ? at::log_softmax(xd.transpose(1, 3), axis) : at::softmax(xd.transpose(1, 3), axis)),
                1e-5)
          << "transposed, axis " << axis;
    }
  // softmax([0, ln 3]) = [1/4, 3/4]
  at::Tensor y = ops::softmax_inference(at::tensor({0.f, std::log(3.f)}).view({1, 2}), 1, false);
  EXPECT_NEAR(y[0][0].item<double>(), 0.25, 1e-6);
  EXPECT_NEAR(y[0][1].item<double>(), 0.75, 1e-6);
}

TEST(DnnlKernels, OperandsThatNeedAGradientKeepTheirAutogradGraph) {
  at::Tensor a = at::randn({2, 3, 4}).requires_grad_();
  at::Tensor b = at::randn({2, 4, 5});
  at::Tensor y = ops::batched_matmul_inference(a, b);
  ASSERT_TRUE(y.requires_grad());
  y.sum().backward();
  EXPECT_LE(max_error(a.grad(), b.sum(-1).unsqueeze(1).expand({2, 3, 4}).to(at::kDouble)), 1e-5);
  at::Tensor s = ops::softmax_inference(a, 2, false);
  EXPECT_TRUE(s.requires_grad());
}
