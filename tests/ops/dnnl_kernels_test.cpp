// The oneDNN inference kernels against ATen in double precision, for the layouts the
// executor hands them (transposed views, broadcast batches, a lone matrix), and the ATen
// path kept where a gradient is needed.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "shrink/ops/dnnl_kernels.h"
#include "shrink/ops/int4.h"

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

// The int8 linear against ONNX's DynamicQuantizeLinear -> MatMulInteger -> scale -> bias
// computed by hand in double (integer products exact), per-tensor and per-channel weight
// scales, 2-D and 3-D inputs, two row counts, and new weights after an in-place change.
TEST(DnnlKernels, DynamicInt8LinearEqualsTheOnnxFormulaInDouble) {
  at::manual_seed(2);
  auto reference = [](const at::Tensor& x, const at::Tensor& w, const at::Tensor& ws, const at::Tensor& b) {
    at::Tensor xd = x.to(at::kDouble).reshape({-1, x.size(-1)});
    double lo = std::min(0.0, xd.min().item<double>()), hi = std::max(0.0, xd.max().item<double>());
    double scale = static_cast<float>((hi - lo) / 255.0);
    double zp = std::clamp(std::nearbyint(-lo / scale), 0.0, 255.0);
    at::Tensor codes = (xd / scale).round().add(zp).clamp(0, 255);
    at::Tensor acc = at::matmul(codes - zp, w.to(at::kDouble).t());
    at::Tensor y = acc * (ws.to(at::kDouble).reshape({1, -1}) * scale) + b.to(at::kDouble);
    std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
    shape.back() = w.size(0);
    return y.reshape(shape);
  };
  ops::DynamicInt8Linear linear;
  at::Tensor w = at::randint(-127, 128, {48, 40}).to(at::kChar);
  at::Tensor bias = at::randn({48});
  for (at::Tensor ws : {at::full({1}, 0.02f), at::rand({48}) * 0.05 + 0.01}) {
    for (at::Tensor x : {at::randn({7, 40}) * 3 + 1, at::randn({2, 5, 40}), at::rand({3, 40})}) {
      at::Tensor want = reference(x, w, ws, bias);
      at::Tensor got = linear(x, w, ws, bias);
      ASSERT_EQ(got.sizes(), want.sizes());
      double scale = want.abs().max().item<double>();
      EXPECT_LE((got.to(at::kDouble) - want).abs().max().item<double>(), 1e-5 * scale) << x.sizes() << ws.numel();
    }
    w.mul_(-1);  // an in-place change: the packed weights are rebuilt
  }
  // A hand computation: x = [0, 2.55] -> scale 0.01, zero point 0, codes [0, 255];
  // w = [[1, 2]], scale 0.5, bias 1: y = 0.5 * 0.01 * (0 * 1 + 255 * 2) + 1 = 3.55.
  ops::DynamicInt8Linear one;
  at::Tensor y = one(at::tensor({0.0f, 2.55f}).view({1, 2}), at::tensor({1, 2}, at::kChar).view({1, 2}),
                     at::full({1}, 0.5f), at::ones({1}));
  EXPECT_NEAR(y.item<double>(), 3.55, 1e-5);
}

// Per-token quantization against the formula in double: each row's codes round(x / s) with
// s = max|row| / 127 (a zero row stays zero), an exact integer product, then s * ws.
// Rows of very different magnitude keep their own precision, which one scale per batch
// loses for the small rows.
TEST(DnnlKernels, PerTokenInt8LinearEqualsTheFormulaInDouble) {
  at::manual_seed(3);
  auto reference = [](const at::Tensor& x, const at::Tensor& w, const at::Tensor& ws, const at::Tensor& b) {
    at::Tensor xd = x.to(at::kDouble).reshape({-1, x.size(-1)});
    at::Tensor s = (xd.abs().amax(1, true).clamp_min(1e-12) / 127).to(at::kFloat).to(at::kDouble);
    at::Tensor codes = (xd / s).round();
    at::Tensor y = at::matmul(codes, w.to(at::kDouble).t()) * s * ws.to(at::kDouble).reshape({1, -1}) + b.to(at::kDouble);
    std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
    shape.back() = w.size(0);
    return y.reshape(shape);
  };
  ops::DynamicInt8Linear per_token(true), per_tensor;
  at::Tensor w = at::randint(-127, 128, {48, 40}).to(at::kChar);
  at::Tensor bias = at::randn({48});
  at::Tensor ws = at::rand({48}) * 0.05 + 0.01;
  at::Tensor x = at::randn({2, 6, 40}) * at::logspace(-3, 2, 6).view({1, 6, 1});  // rows from 1e-3 to 1e2
  x[1][2].zero_();
  at::Tensor want = reference(x, w, ws, bias);
  at::Tensor got = per_token(x, w, ws, bias);
  ASSERT_EQ(got.sizes(), want.sizes());
  at::Tensor row_err = (got.to(at::kDouble) - want).abs().amax(-1);
  at::Tensor row_scale = want.abs().amax(-1);
  EXPECT_TRUE(row_err.le(1e-5 * row_scale + 1e-6).all().item<bool>()) << row_err / row_scale;
  // Against the float product: each row within a few of its own steps; one scale per batch
  // leaves the smallest rows' codes all zero.
  at::Tensor exact = at::matmul(x.to(at::kDouble), (w.to(at::kDouble) * ws.to(at::kDouble).view({-1, 1})).t());
  at::Tensor small = (got.to(at::kDouble) - bias.to(at::kDouble) - exact).select(1, 0).abs().max();
  at::Tensor small_tensor = (per_tensor(x, w, ws, bias).to(at::kDouble) - bias.to(at::kDouble) - exact).select(1, 0).abs().max();
  EXPECT_LT(small.item<double>(), 0.05 * small_tensor.item<double>());
  // By hand: row [1, -2.54] -> s = 0.02, codes [50, -127]; w = [[1, 1]], ws 1, no bias:
  // y = 0.02 * (50 - 127) = -1.54.
  ops::DynamicInt8Linear one(true);
  at::Tensor y = one(at::tensor({1.0f, -2.54f}).view({1, 2}), at::tensor({1, 1}, at::kChar).view({1, 2}), at::ones({1}),
                     at::Tensor());
  EXPECT_NEAR(y.item<double>(), -1.54, 1e-5);
}

// The 4-bit kernel against the unpacked float weight in double, for 1 to 17 rows (3 on:
// the unpack-and-sgemm path), column counts with partial blocks, two group sizes; and the
// unpacking by hand.
TEST(DnnlKernels, Int4LinearEqualsTheUnpackedWeight) {
  at::manual_seed(6);
  for (int64_t group : {16, 32})
    for (int64_t n : {10, 64, 100}) {
      const int64_t k = 4 * group;
      at::Tensor packed = at::randint(0, 256, {k / group, group / 2, n}).to(at::kByte);
      at::Tensor scale = at::rand({k / group, 1, n}) * 0.1 + 0.01;
      at::Tensor bias = at::randn({n});
      at::Tensor w = ops::int4_unpack(packed, scale).to(at::kDouble);
      for (int64_t rows : {1, 2, 3, 4, 5, 17}) {
        at::Tensor x = at::randn({rows, k});
        at::Tensor want = at::matmul(x.to(at::kDouble), w) + bias.to(at::kDouble);
        at::Tensor got = ops::int4_linear(x, packed, scale, bias);
        ASSERT_EQ(got.sizes(), want.sizes());
        EXPECT_LE((got.to(at::kDouble) - want).abs().max().item<double>(), 1e-4 * (1 + want.abs().max().item<double>()))
            << group << " " << n << " " << rows;
      }
      at::Tensor x3 = at::randn({2, 3, k});
      EXPECT_EQ(ops::int4_linear(x3, packed, scale, at::Tensor()).sizes(), (std::vector<int64_t>{2, 3, n}));
    }
  // One group of 2: byte 0x3A = codes 10 (low, row 0) and 3 (high, row 1), scale 0.5:
  // weights (10 - 8) * 0.5 = 1 and (3 - 8) * 0.5 = -2.5; x = [2, 1]: 2 - 2.5 = -0.5.
  at::Tensor p = at::full({1, 1, 1}, 0x3A, at::kByte);
  at::Tensor sc = at::full({1, 1, 1}, 0.5f);
  EXPECT_TRUE(at::equal(ops::int4_unpack(p, sc), at::tensor({1.0f, -2.5f}).view({2, 1})));
  EXPECT_NEAR(ops::int4_linear(at::tensor({2.0f, 1.0f}).view({1, 2}), p, sc, at::Tensor()).item<double>(), -0.5, 1e-6);
}

// Dequantization equals ATen's to the bit ((q - zero point) * scale has one rounding) in
// both memory formats the int8 kernels produce, and keeps the layout.
TEST(DnnlKernels, DequantizeEqualsATenToTheBitAndKeepsTheLayout) {
  at::manual_seed(4);
  at::Tensor x = at::randn({2, 8, 5, 7}) * 3;
  for (at::MemoryFormat format : {at::MemoryFormat::Contiguous, at::MemoryFormat::ChannelsLast}) {
    at::Tensor q = at::quantize_per_tensor(x.contiguous(format), 0.037, 41, at::kQUInt8);
    at::Tensor got = ops::dequantize_inference(q);
    EXPECT_TRUE(at::equal(got, q.dequantize()));
    EXPECT_EQ(got.strides(), q.strides());
  }
  // (200 - 41) * 0.5 = 79.5 by hand.
  at::Tensor one = at::_make_per_tensor_quantized_tensor(at::full({1}, 200, at::kByte), 0.5, 41);
  EXPECT_EQ(ops::dequantize_inference(one).item<float>(), 79.5f);
}

// oneDNN max pooling equals ATen's (a max has no rounding) in both layouts, with
// symmetric and asymmetric pads (padding never wins), and keeps the layout.
TEST(DnnlKernels, MaxPoolEqualsATenInBothLayouts) {
  at::manual_seed(8);
  at::Tensor x = at::randn({2, 5, 9, 8}) - 3;  // mostly negative: a zero pad would win
  for (at::MemoryFormat format : {at::MemoryFormat::Contiguous, at::MemoryFormat::ChannelsLast}) {
    at::Tensor in = x.contiguous(format);
    at::Tensor got = ops::max_pool2d_inference(in, {3, 3}, {2, 2}, {1, 1}, {1, 1});
    EXPECT_TRUE(at::equal(got, at::max_pool2d(x, {3, 3}, {2, 2}, {1, 1})));
    EXPECT_TRUE(got.is_contiguous(format));
    at::Tensor odd = ops::max_pool2d_inference(in, {2, 3}, {1, 2}, {0, 2}, {1, 0});
    at::Tensor want = at::max_pool2d(at::constant_pad_nd(x, {2, 0, 0, 1}, -INFINITY), {2, 3}, {1, 2});
    EXPECT_TRUE(at::equal(odd, want));
  }
}
