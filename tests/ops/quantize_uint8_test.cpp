// shrink's vectorised quantize against at::quantize_per_tensor, ties included.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "shrink/ops/int8.h"

using namespace shrink;

TEST(QuantizeUint8, EqualsATenIncludingHalfwayTiesAndClamping) {
  at::manual_seed(0);
  const double scale = 0.0173;
  const int64_t zp = 117;
  // Random values over and beyond the range, plus exact halfway points (k + 0.5) * scale
  // where round-half-to-even decides.
  at::Tensor x = at::cat({at::randn({4000}) * 3, (at::arange(-130, 140).to(at::kFloat) + 0.5f) * static_cast<float>(scale),
                          at::tensor({1e9f, -1e9f, 0.f})});
  at::Tensor want = at::quantize_per_tensor(x, scale, zp, at::kQUInt8);
  at::Tensor got = ops::quantize_uint8(x, scale, zp);
  EXPECT_TRUE(got.is_quantized());
  EXPECT_DOUBLE_EQ(got.q_scale(), scale);
  EXPECT_EQ(got.q_zero_point(), zp);
  EXPECT_TRUE(at::equal(got.int_repr(), want.int_repr()));
  // Hand: 0.5 * 0.0173 / 0.0173 = 0.5 rounds to 0 (even): code 117; 1.5 rounds to 2: 119.
  at::Tensor hand = ops::quantize_uint8(at::tensor({0.5f * 0.0173f, 1.5f * 0.0173f}), scale, zp).int_repr();
  EXPECT_EQ(hand[0].item<int>(), 117);
  EXPECT_EQ(hand[1].item<int>(), 119);
  // A channels-last batch stays channels-last.
  at::Tensor img = at::randn({2, 3, 4, 5}).contiguous(at::MemoryFormat::ChannelsLast);
  EXPECT_TRUE(ops::quantize_uint8(img, scale, zp).is_contiguous(at::MemoryFormat::ChannelsLast));
}
