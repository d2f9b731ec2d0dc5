// oneDNN-backed products checked against ATen in double precision and a hand computation,
// forward, backward and double backward, for the layouts autograd hands them.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include "shrink/ops/sgemm.h"

using namespace shrink;

namespace {

at::Tensor ref_mm(const at::Tensor& a, const at::Tensor& b) { return at::mm(a.to(at::kDouble), b.to(at::kDouble)); }

bool close(const at::Tensor& got, const at::Tensor& want) {
  return at::allclose(got.to(at::kDouble), want.to(at::kDouble), 1e-4, 1e-4);
}

}  // namespace

TEST(Sgemm, HandComputedProduct) {
  at::Tensor a = at::tensor({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}).view({2, 3});
  at::Tensor b = at::tensor({1.f, 0.f, -1.f, 2.f, 0.5f, 1.f}).view({3, 2});
  ASSERT_TRUE(ops::uses_onednn(a, b));
  at::Tensor c = ops::dense_mm(a, b);
  // [1 2 3; 4 5 6] x [1 0; -1 2; 0.5 1] = [0.5 7; 2 16]
  EXPECT_TRUE(at::equal(c, at::tensor({0.5f, 7.f, 2.f, 16.f}).view({2, 2})));
}

TEST(Sgemm, EveryLayoutMatchesATenInDouble) {
  at::manual_seed(0);
  for (auto [m, k, n] : {std::tuple<int64_t, int64_t, int64_t>{128, 784, 128}, {7, 13, 5}, {1, 300, 100}, {64, 1, 3}}) {
    at::Tensor a = at::randn({m, k}), b = at::randn({k, n});
    at::Tensor at_ = at::randn({k, m}).t(), bt = at::randn({n, k}).t();  // column-major views
    at::Tensor wide = at::randn({m, 2 * k});
    at::Tensor a_strided = wide.slice(1, 0, 2 * k, 2);  // neither rows nor columns contiguous
    at::Tensor a_ld = wide.slice(1, 0, k);               // rows contiguous, leading dimension 2k
    for (auto [x, y] : {std::pair{a, b}, {at_, b}, {a, bt}, {at_, bt}, {a_strided, b}, {a_ld, bt}}) {
      at::Tensor got = ops::dense_mm(x, y);
      EXPECT_TRUE(close(got, ref_mm(x, y))) << m << "x" << k << "x" << n << " strides " << x.strides() << " "
                                            << y.strides();
    }
  }
  EXPECT_EQ(ops::dense_mm(at::randn({0, 4}), at::randn({4, 3})).sizes(), (std::vector<int64_t>{0, 3}));
  EXPECT_TRUE(at::equal(ops::dense_mm(at::randn({2, 0}), at::randn({0, 3})), at::zeros({2, 3})));
  EXPECT_FALSE(ops::uses_onednn(at::randn({2, 3}, at::kDouble), at::randn({3, 2}, at::kDouble)));
  EXPECT_TRUE(at::equal(ops::dense_mm(at::ones({2, 3}, at::kDouble), at::ones({3, 2}, at::kDouble)),
                        at::full({2, 2}, 3.0, at::kDouble)));
}

TEST(Sgemm, LinearGradientsAndSecondDerivativesMatchATen) {
  at::manual_seed(1);
  at::Tensor x = at::randn({32, 20}).requires_grad_(), w = at::randn({10, 20}).requires_grad_(),
             bias = at::randn({10}).requires_grad_();
  at::Tensor up = at::randn({32, 10});
  auto grads = [&](bool ours) {
    at::Tensor y = ours ? ops::dense_linear(x, w, bias) : at::linear(x.to(at::kDouble), w.to(at::kDouble), bias.to(at::kDouble));
    at::Tensor loss = (y * up.to(y.scalar_type())).sum() + (y * y).sum();
    // First derivatives with a graph, then the derivative of their squared norm (double backward).
    auto g = torch::autograd::grad({loss}, {x, w, bias}, {}, true, true);
    at::Tensor second = g[0].pow(2).sum() + g[1].pow(2).sum();
    auto gg = torch::autograd::grad({second}, {x, w}, {}, false, false);
    return std::vector<at::Tensor>{y, g[0], g[1], g[2], gg[0], gg[1]};
  };
  std::vector<at::Tensor> ours = grads(true), ref = grads(false);
  const char* names[] = {"output", "d/dx", "d/dw", "d/dbias", "second d/dx", "second d/dw"};
  for (size_t i = 0; i < ours.size(); ++i) {
    EXPECT_EQ(ours[i].scalar_type(), at::kFloat) << names[i];  // oneDNN ran (the reference is double)
    EXPECT_TRUE(at::allclose(ours[i].to(at::kDouble), ref[i].to(at::kDouble), 1e-3, 1e-3)) << names[i];
  }
  at::Tensor y = ops::dense_linear(x, w, bias);
  EXPECT_NE(y.grad_fn(), nullptr);  // recorded: the product is an autograd node
  // The weight's gradient, as torch::autograd::grad returns it to the training step (no
  // AccumulateGrad re-layout), is laid out like the weight: the optimizer's passes over it
  // then run vectorised (a transposed gradient sent them to ATen's scalar strided loop).
  at::Tensor gw = torch::autograd::grad({(y * up).sum()}, {w})[0];
  EXPECT_TRUE(gw.is_contiguous());
  EXPECT_TRUE(at::allclose(gw, at::mm(up.t(), x.detach()), 1e-4, 1e-4));
}

TEST(Sgemm, InferenceAddsTheBiasInPlaceWithoutAGraph) {
  at::manual_seed(2);
  at::Tensor x = at::randn({4, 6}), w = at::randn({3, 6}), bias = at::randn({3});
  at::Tensor y = ops::dense_linear(x, w, bias);
  EXPECT_EQ(y.grad_fn(), nullptr);
  EXPECT_TRUE(close(y, at::linear(x.to(at::kDouble), w.to(at::kDouble), bias.to(at::kDouble))));
}
