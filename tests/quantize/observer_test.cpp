// Observers against PyTorch's (torch.ao.quantization, /usr/bin/python3) on the same
// batches, the histogram searches on hand-made distributions, and the edge cases
// (constant and all-zero tensors, NaN, nothing observed).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>

#include "shrink/io/npy.h"
#include "shrink/quantize/observer.h"
#include "support/errors.h"
#include "support/onnx_builder.h"
#include "support/paths.h"
#include "support/process.h"

using namespace shrink;
using quantize::make_observer;
using quantize::observer_options;
using test_support::error_of;

TEST(Observer, MinMaxMovingAverageAndL2SearchMatchPyTorch) {
  test_support::TempDir dir;
  at::manual_seed(0);
  std::vector<at::Tensor> batches = {at::randn({4, 3, 5, 5}) * 2 + 0.5, at::randn({4, 3, 5, 5}) * 3 - 1,
                                     at::rand({4, 3, 5, 5})};
  for (size_t i = 0; i < batches.size(); ++i) io::write_npy(dir.file("b" + std::to_string(i) + ".npy"), batches[i]);
  // A skewed histogram (a bulk and a thin tail) for the L2 search.
  at::Tensor hist = at::cat({at::randint(50, 200, {1800}), at::randint(0, 3, {248})}).to(at::kFloat);
  io::write_npy(dir.file("hist.npy"), hist);
  std::ofstream(dir.file("ref.py")) << R"(import sys, numpy as np, torch
from torch.ao.quantization import observer as O
d = sys.argv[1]
B = [torch.from_numpy(np.load(f"{d}/b{i}.npy")) for i in range(3)]
out = []
for obs in [O.MinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_affine),
            O.MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric),
            O.MovingAverageMinMaxObserver(averaging_constant=0.01, dtype=torch.quint8),
            O.PerChannelMinMaxObserver(ch_axis=1, dtype=torch.qint8, qscheme=torch.per_channel_symmetric),
            O.PerChannelMinMaxObserver(ch_axis=1, dtype=torch.quint8, qscheme=torch.per_channel_affine)]:
    for b in B: obs(b)
    s, z = obs.calculate_qparams()
    out += [s.double().flatten(), z.double().flatten()]
h = O.HistogramObserver(bins=2048, dtype=torch.quint8)
h.histogram = torch.from_numpy(np.load(f"{d}/hist.npy"))
h.min_val = torch.tensor(-1.5); h.max_val = torch.tensor(4.0)
lo, hi = h._non_linear_param_search()
out.append(torch.tensor([float(lo), float(hi)], dtype=torch.float64))
np.save(f"{d}/ref.npy", torch.cat(out).numpy())
)";
  auto r = test_support::run_command(test_support::python() + " " + dir.file("ref.py") + " " + dir.path);
  ASSERT_EQ(r.status, 0) << r.output;
  at::Tensor ref = io::read_npy(dir.file("ref.npy"));
  std::vector<quantize::ObserverOptions> configs = {observer_options("minmax", at::kByte, false),
                                                    observer_options("minmax", at::kChar, true),
                                                    observer_options("moving_average", at::kByte, false),
                                                    observer_options("minmax", at::kChar, true, 1),
                                                    observer_options("minmax", at::kByte, false, 1)};
  int64_t at_ref = 0;
  for (const auto& c : configs) {
    auto obs = make_observer(c);
    for (const auto& b : batches) obs->observe(b, "x");
    quantize::QParams p = obs->qparams("x");
    int64_t n = p.scale.numel();
    at::Tensor s = ref.slice(0, at_ref, at_ref + n), z = ref.slice(0, at_ref + n, at_ref + 2 * n);
    at_ref += 2 * n;
    EXPECT_TRUE(at::allclose(p.scale.to(at::kDouble).flatten(), s, 1e-6, 0)) << c.kind << " " << p.scale << s;
    EXPECT_TRUE(at::equal(p.zero_point.to(at::kDouble).flatten(), z)) << c.kind << " " << p.zero_point << z;
    EXPECT_EQ(p.zero_point.scalar_type(), c.dtype);
  }
  auto [lo, hi] = quantize::l2_search(hist.to(at::kDouble), -1.5, 4.0, 256);
  EXPECT_NEAR(lo, ref[at_ref].item<double>(), 1e-6);
  EXPECT_NEAR(hi, ref[at_ref + 1].item<double>(), 1e-6);
  EXPECT_LT(hi, 4.0);  // the thin tail was clipped
}

TEST(Observer, HistogramSearchesClipOutliersAndKeepUniformRanges) {
  at::manual_seed(1);
  // One value at 40 beside a million N(0, 1): clipping it costs 35^2 of squared error,
  // keeping it makes the step 5x coarser for all the others (about 2,600 against 130).
  at::Tensor bulk = at::randn({1000000});
  at::Tensor outliers = at::full({1}, 40.0);
  for (const char* kind : {"entropy", "l2", "mse", "percentile"}) {
    auto obs = make_observer(observer_options(kind, at::kByte, false));
    obs->observe(bulk.slice(0, 0, 500000), "x");
    obs->observe(at::cat({bulk.slice(0, 500000), outliers}), "x");  // widens the histogram
    auto [lo, hi] = obs->range();
    EXPECT_LT(hi.item<double>(), 20.0) << kind << ": the outlier at 40 should be clipped";
    EXPECT_GT(hi.item<double>(), 2.5) << kind << ": the bulk (to about 4) should be kept";
    EXPECT_LT(lo.item<double>(), -2.5) << kind;
  }
  // On a uniform distribution there is nothing to clip.
  at::Tensor uniform = at::rand({50000}) * 6.0;
  for (const char* kind : {"entropy", "l2", "mse"}) {
    auto obs = make_observer(observer_options(kind, at::kByte, false));
    obs->observe(uniform, "x");
    EXPECT_GT(obs->range().second.item<double>(), 5.5) << kind;
  }
  // Percentile 99 of uniform [0, 6) is 5.94.
  auto pct = observer_options("percentile", at::kByte, false);
  pct.percentile = 99.0;
  auto p = make_observer(pct);
  p->observe(uniform, "x");
  EXPECT_NEAR(p->range().second.item<double>(), 5.94, 0.02);
  EXPECT_NEAR(p->range().first.item<double>(), 0.06, 0.02);
}

TEST(Observer, MsePerChannelNeverLosesToMinMax) {
  at::manual_seed(2);
  at::Tensor w = at::randn({8, 256, 3, 3}).pow(3);  // heavy tails
  auto mse = make_observer(observer_options("mse", at::kChar, true, 0));
  auto mm = make_observer(observer_options("minmax", at::kChar, true, 0));
  mse->observe(w, "w");
  mm->observe(w, "w");
  auto error = [&](const quantize::QParams& p) {
    at::Tensor s = p.scale.reshape({-1, 1, 1, 1}).to(at::kDouble);
    at::Tensor q = at::clamp(at::round(w.to(at::kDouble) / s), -128, 127);
    return (q * s - w).pow(2).sum({1, 2, 3});
  };
  at::Tensor e_mse = error(mse->qparams("w")), e_mm = error(mm->qparams("w"));
  EXPECT_TRUE((e_mse <= e_mm + 1e-12).all().item<bool>()) << e_mse << e_mm;
  EXPECT_TRUE((e_mse < e_mm - 1e-9).any().item<bool>()) << "clipping the tails should pay on some channel";
}

TEST(Observer, EdgeCasesGiveDefinedParametersOrClearErrors) {
  const double eps = std::numeric_limits<float>::epsilon();
  for (const char* kind : {"minmax", "moving_average", "entropy", "l2", "percentile", "mse"}) {
    auto zero = make_observer(observer_options(kind, at::kByte, false));
    zero->observe(at::zeros({16}), "z");
    quantize::QParams p = zero->qparams("z");
    EXPECT_NEAR(p.scale.item<double>(), eps, 1e-12) << kind;
    EXPECT_EQ(p.zero_point.item<int>(), 0) << kind;
    auto constant = make_observer(observer_options(kind, at::kByte, false));
    constant->observe(at::full({16}, 3.0), "c");
    p = constant->qparams("c");
    EXPECT_NEAR(p.scale.item<double>(), 3.0 / 255, 1e-7) << kind;  // the range [0, 3]
    EXPECT_TRUE(std::isfinite(p.scale.item<double>()));
  }
  auto obs = make_observer(observer_options("minmax", at::kByte, false));
  at::Tensor nan = at::ones({4});
  nan[2] = std::nan("");
  EXPECT_EQ(error_of([&] { obs->observe(nan, "conv1.out"); }),
            "quantize: value 'conv1.out' has NaN or Inf in calibration batch 1; its quantization range is undefined");
  EXPECT_EQ(error_of([&] { obs->qparams("relu"); }),
            "quantize: the observer of 'relu' saw no data (calibrate with at least one batch)");
  EXPECT_NE(error_of([&] { make_observer(observer_options("kl", at::kByte, false)); }).find("--observer: 'kl'"),
            std::string::npos);
  EXPECT_NE(error_of([&] { make_observer(observer_options("entropy", at::kByte, false, 0)); }).find("per tensor"),
            std::string::npos);
}
