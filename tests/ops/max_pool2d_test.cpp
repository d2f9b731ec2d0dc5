// The 2x2 / stride 2 max pool against ATen's max_pool2d_with_indices: values, indices
// (ties and NaNs included) and gradients, and a hand-computed window.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <limits>

#include "shrink/ops/max_pool2d.h"

using namespace shrink;

TEST(MaxPool2x2, HandComputedWindowsTiesGoToTheFirstMaximum) {
  // One 2x4 plane, two windows: [1 3; 3 2] -> 3 at (0,1) (the first 3 in scan order),
  // [0 0; 0 0] -> 0 at (0,2).
  at::Tensor x = at::tensor({1.f, 3.f, 0.f, 0.f, 3.f, 2.f, 0.f, 0.f}).view({1, 1, 2, 4});
  auto [y, i] = ops::max_pool2d_2x2(x, true);
  EXPECT_TRUE(at::equal(y, at::tensor({3.f, 0.f}).view({1, 1, 1, 2})));
  EXPECT_TRUE(at::equal(i, at::tensor({1L, 2L}).view({1, 1, 1, 2})));
}

TEST(MaxPool2x2, MatchesATenOnTiesNaNsOddSizesAndDoubles) {
  at::manual_seed(0);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (auto [h, w] : {std::pair<int64_t, int64_t>{28, 28}, {10, 10}, {5, 7}, {2, 2}, {3, 34}}) {
    // Small integers make ties common; a ReLU makes runs of zeros; a few NaNs.
    at::Tensor x = at::randint(-2, 3, {3, 4, h, w}).to(at::kFloat).relu_();
    at::Tensor mask = at::rand({3, 4, h, w}) < 0.05;
    x.masked_fill_(mask, nan);
    for (at::Tensor in : {x, x.to(at::kDouble), at::randn({2, 3, h, w})}) {
      auto [want, want_i] = at::max_pool2d_with_indices(in, {2, 2}, {2, 2});
      auto [got, got_i] = ops::max_pool2d_2x2(in, true);
      EXPECT_TRUE(at::equal(got_i, want_i)) << h << "x" << w << " " << in.scalar_type();
      EXPECT_TRUE(at::allclose(got, want, 0, 0, /*equal_nan=*/true)) << h << "x" << w;
      EXPECT_TRUE(at::allclose(ops::max_pool2d_2x2(in, false).first, want, 0, 0, true)) << "without indices";
    }
  }
  // A non-contiguous input (channels-last view) pools the same.
  at::Tensor cl = at::randn({2, 3, 6, 8}).contiguous(at::MemoryFormat::ChannelsLast);
  EXPECT_TRUE(at::equal(ops::max_pool2d_2x2(cl, false).first, at::max_pool2d(cl, {2, 2}, {2, 2})));
}

TEST(MaxPool2x2, GradientsAreATens) {
  at::manual_seed(1);
  at::Tensor base = at::randint(0, 3, {4, 6, 12, 9}).to(at::kFloat);  // ties everywhere
  at::Tensor up = at::randn({4, 6, 6, 4});
  at::Tensor a = base.clone().requires_grad_(), b = base.clone().requires_grad_();
  (ops::max_pool2d_2x2(a, false).first * up).sum().backward();
  (at::max_pool2d(b, {2, 2}, {2, 2}) * up).sum().backward();
  EXPECT_TRUE(at::equal(a.grad(), b.grad()));
}

TEST(MaxPool2x2, Uint8CodesPoolLikeATensQuantizedPool) {
  at::manual_seed(3);
  for (auto format : {at::MemoryFormat::Contiguous, at::MemoryFormat::ChannelsLast}) {
    for (int64_t c : {1, 6, 16, 19}) {
      at::Tensor x = at::randn({2, c, 9, 12}).contiguous(format);
      at::Tensor q = at::quantize_per_tensor(x, 0.05, 100, at::kQUInt8);
      at::Tensor raw = q.int_repr();
      ASSERT_TRUE(ops::max_pool2d_2x2_uint8_applies(raw));
      at::Tensor got = ops::max_pool2d_2x2_uint8(raw);
      at::Tensor want = at::max_pool2d(q, {2, 2}, {2, 2}, {0, 0}, {1, 1}).int_repr();
      EXPECT_TRUE(at::equal(got, want)) << "channels " << c;
      EXPECT_EQ(got.is_contiguous(format), true) << "keeps the memory format";
    }
  }
  EXPECT_FALSE(ops::max_pool2d_2x2_uint8_applies(at::zeros({1, 2, 4, 4}, at::kFloat)));
}
