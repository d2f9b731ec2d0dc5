// Low-rank factorization: decompositions against numpy and against tensors of known
// rank, exact reconstruction at full rank, error monotone in the rank, the layer's
// geometry carried through every factor (checked by running the graph and ONNX Runtime),
// EVBMF on matrices of known rank, refusals that name the layer, and the rank search.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "shrink/core/error.h"
#include "shrink/exec/session.h"
#include "shrink/factorize/decompose.h"
#include "shrink/factorize/factorize.h"
#include "shrink/io/npy.h"
#include "shrink/onnx/export.h"
#include "shrink/onnx/import.h"
#include "support/onnx_builder.h"
#include "support/ort.h"
#include "support/paths.h"
#include "support/process.h"

using namespace shrink;
using test_support::OnnxBuilder;

namespace {

// x [2, C, H, W] -> Conv (the given geometry) -> y.
ir::Graph conv_graph(const test_support::TempDir& dir, const at::Tensor& w, std::vector<int64_t> strides,
                     std::vector<int64_t> pads, std::vector<int64_t> dilations, int64_t h = 9, int64_t wd = 11) {
  OnnxBuilder b;
  b.input("x", {2, w.size(1), h, wd}).output("y");
  b.initializer("w", w).initializer("b", at::randn({w.size(0)}));
  auto& n = b.node("Conv", {"x", "w", "b"}, {"y"}, "conv");
  OnnxBuilder::attr(n, "strides", strides);
  OnnxBuilder::attr(n, "pads", pads);
  OnnxBuilder::attr(n, "dilations", dilations);
  return onnx_io::import_model(b.save(dir.file("conv.onnx")));
}

// Runs both graphs on the same input; the factorized one in ONNX Runtime too.
void expect_same_outputs(const ir::Graph& original, const ir::Graph& factorized, const at::Tensor& x, double tol,
                         const std::string& what) {
  at::Tensor want = exec::run_once(original, {x})[0];
  at::Tensor got = exec::run_once(factorized, {x})[0];
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  EXPECT_LE((got - want).abs().max().item<double>(), tol) << what;
  test_support::TempDir dir;
  onnx_io::export_model(factorized, dir.file("f.onnx"));
  at::Tensor ort = test_support::run_onnxruntime(dir.file("f.onnx"), {x})[0];
  EXPECT_LE((ort - got).abs().max().item<double>(), 1e-4) << what << ": ONNX Runtime";
}

int count_ops(const ir::Graph& g, const std::string& op) {
  int n = 0;
  for (const auto& node : g.nodes()) n += node->op_type == op;
  return n;
}

// A kernel of multilinear rank (r_out, r_in): core x0 U x1 V.
at::Tensor tucker_kernel(int64_t n, int64_t c, int64_t r_out, int64_t r_in, int64_t k) {
  return at::einsum("rsij,nr,cs->ncij", {at::randn({r_out, r_in, k, k}), at::randn({n, r_out}), at::randn({c, r_in})});
}

// A kernel of CP rank r.
at::Tensor cp_kernel(int64_t n, int64_t c, int64_t r, int64_t k) {
  return at::einsum("nr,cr,ir,jr->ncij", {at::randn({n, r}), at::randn({c, r}), at::randn({k, r}), at::randn({k, r})});
}

}  // namespace

TEST(Decompose, SingularValuesAgreeWithNumpy) {
  test_support::TempDir dir;
  at::manual_seed(1);
  at::Tensor m = at::randn({37, 23}, at::kDouble);
  io::write_npy(dir.file("m.npy"), m);
  std::ofstream(dir.file("svd.py")) << "import numpy as np, sys\n"
                                       "m = np.load(sys.argv[1] + '/m.npy')\n"
                                       "np.save(sys.argv[1] + '/s.npy', np.linalg.svd(m, compute_uv=False))\n";
  auto r = test_support::run_command(test_support::python() + " " + dir.file("svd.py") + " " + dir.path);
  ASSERT_EQ(r.status, 0) << r.output;
  at::Tensor numpy = io::read_npy(dir.file("s.npy"));
  at::Tensor ours = factorize::singular_values(m);
  ASSERT_EQ(ours.sizes(), numpy.sizes());
  EXPECT_TRUE(at::allclose(ours, numpy.to(at::kDouble), 1e-10, 1e-10)) << (ours - numpy).abs().max().item<double>();

  // The truncated factors reproduce the best rank-r approximation: error^2 = tail energy.
  for (int64_t rank : {1, 5, 23}) {
    factorize::LowRank f = factorize::truncated_svd(m, rank);
    double err2 = (m - f.a.mm(f.b)).pow(2).sum().item<double>();
    double tail = ours.slice(0, rank).pow(2).sum().item<double>();
    EXPECT_NEAR(err2, tail, 1e-8 * (1 + tail)) << "rank " << rank;
  }
}

// Large matrices go through the Gram matrix's eigenvalues (both sides >= 512): the
// factors still give the best rank-r approximation (error^2 = LAPACK's tail energy), the
// singular values split evenly, wide and tall alike; EVBMF finds the planted rank.
TEST(Decompose, LargeMatricesThroughTheGramMatrixMatchLapack) {
  at::manual_seed(2);
  for (std::vector<int64_t> shape : {std::vector<int64_t>{520, 1300}, std::vector<int64_t>{1300, 520}}) {
    at::Tensor m = at::randn(shape, at::kDouble);
    at::Tensor s = at::linalg_svdvals(m);
    for (int64_t rank : {1, 40, 400}) {
      factorize::LowRank f = factorize::truncated_svd(m, rank);
      ASSERT_EQ(f.a.size(1), rank);
      double err2 = (m - f.a.mm(f.b)).pow(2).sum().item<double>();
      double tail = s.slice(0, rank).pow(2).sum().item<double>();
      EXPECT_NEAR(err2, tail, 1e-9 * tail) << shape[0] << "x" << shape[1] << " rank " << rank;
      EXPECT_TRUE(at::allclose(f.a.pow(2).sum(0), f.b.pow(2).sum(1), 1e-8)) << "singular values split evenly";
    }
    // A planted rank-7 signal under small noise.
    at::Tensor low = at::randn({shape[0], 7}, at::kDouble).mm(at::randn({7, shape[1]}, at::kDouble)) * 3.0;
    EXPECT_EQ(factorize::evbmf_rank(low + 0.01 * at::randn(shape, at::kDouble)), 7);
  }
}

TEST(Decompose, ErrorNeverIncreasesAsTheRankDrops) {
  at::manual_seed(2);
  at::Tensor m = at::randn({20, 30}, at::kDouble);
  double previous = -1;
  for (int64_t r = 20; r >= 1; --r) {
    factorize::LowRank f = factorize::truncated_svd(m, r);
    double e = (m - f.a.mm(f.b)).norm().item<double>();
    EXPECT_GE(e, previous - 1e-12) << "svd rank " << r;
    previous = e;
  }
  at::Tensor w = at::randn({12, 10, 3, 3}, at::kDouble);
  previous = -1;
  for (int64_t r = 10; r >= 1; --r) {
    factorize::Tucker2 t = factorize::tucker2(w, std::min<int64_t>(12, r + 2), r);
    EXPECT_NEAR(t.error, (w - factorize::reconstruct(t)).norm().item<double>() / w.norm().item<double>(), 1e-9);
    EXPECT_GE(t.error, previous - 1e-9) << "tucker rank " << r;
    previous = t.error;
  }
}

TEST(Decompose, KnownRanksAreRecovered) {
  at::manual_seed(3);
  at::Tensor w = tucker_kernel(8, 6, 3, 2, 3).to(at::kDouble);
  factorize::Tucker2 t = factorize::tucker2(w, 3, 2);
  EXPECT_LT(t.error, 1e-6);  // (the error is sqrt(||W||^2 - ||core||^2): float cancellation near zero)
  EXPECT_LT((factorize::reconstruct(t) - w).norm().item<double>() / w.norm().item<double>(), 1e-6);  // float-made kernel
  at::Tensor c = cp_kernel(8, 6, 3, 3).to(at::kDouble);
  factorize::Cp cp = factorize::cp_als(c, 3, 2000, 1e-12);
  EXPECT_LT(cp.error, 1e-5) << cp.iterations << " iterations";
  EXPECT_LT((factorize::reconstruct(cp) - c).norm().item<double>() / c.norm().item<double>(), 1e-5);

  // EVBMF: a rank-5 signal under noise keeps 5; pure noise keeps none.
  at::Tensor signal = at::randn({60, 5}, at::kDouble).mm(at::randn({5, 90}, at::kDouble));
  EXPECT_EQ(factorize::evbmf_rank(signal + 0.1 * at::randn({60, 90}, at::kDouble)), 5);
  EXPECT_EQ(factorize::evbmf_rank(signal.t() + 0.1 * at::randn({90, 60}, at::kDouble)), 5);
  EXPECT_EQ(factorize::evbmf_rank(at::randn({60, 90}, at::kDouble)), 0);
  EXPECT_EQ(factorize::energy_rank(at::tensor({3.0, 2.0, 1.0}, at::kDouble), 13.0 / 14.0), 2);
}


// A mode's Tucker rank is at most the product of the other modes' extents: one input
// direction of a 3x3 kernel spans at most 9 output directions, so asking for 12 gives 9
// factors (EfficientNetV2's, GoogLeNet's and Inception's stems hit this: the factors used
// to be reshaped to the rank asked for and failed). The kept part is exact: W projected
// on its one input direction.
TEST(Decompose, TuckerRanksAreBoundedByTheOtherModes) {
  at::manual_seed(5);
  at::Tensor w = at::randn({20, 4, 3, 3}, at::kDouble);
  factorize::Tucker2 t = factorize::tucker2(w, 12, 1);
  EXPECT_EQ(t.u_out.size(1), 9);
  EXPECT_EQ(t.u_in.size(1), 1);
  EXPECT_EQ(t.core.sizes(), (std::vector<int64_t>{9, 1, 3, 3}));
  at::Tensor u = t.u_in.select(1, 0);
  at::Tensor projected = at::einsum("ncij,c,d->ndij", {w, u, u});
  EXPECT_LT((factorize::reconstruct(t) - projected).norm().item<double>() / projected.norm().item<double>(), 1e-9);
}
TEST(Factorize, FullRankGemmAndMatMulReconstructExactly) {
  test_support::TempDir dir;
  at::manual_seed(4);
  OnnxBuilder b;
  b.input("x", {-1, 7}).output("y");
  b.initializer("W1", at::randn({5, 7})).initializer("b1", at::randn({5}));
  b.initializer("W2", at::randn({5, 6})).initializer("W3", at::randn({6, 4})).initializer("b3", at::randn({1, 4}));
  auto& g1 = b.node("Gemm", {"x", "W1", "b1"}, {"h1"}, "fc1");
  OnnxBuilder::attr(g1, "transB", int64_t{1});
  OnnxBuilder::attr(g1, "alpha", 0.5f);
  OnnxBuilder::attr(g1, "beta", 2.0f);
  b.node("MatMul", {"h1", "W2"}, {"h2"}, "mm");
  b.node("Gemm", {"h2", "W3", "b3"}, {"y"}, "fc2");
  ir::Graph g = onnx_io::import_model(b.save(dir.file("m.onnx")));
  ir::Graph original = g.clone();
  factorize::FactorizeOptions o;
  o.method = "svd";
  o.rule = {factorize::RankRule::Kind::Rank, 7};  // clamped to each layer's full rank
  o.allow_growth = true;
  auto results = factorize::factorize(g, o);
  ASSERT_EQ(results.size(), 3u);
  for (const auto& r : results) {
    EXPECT_TRUE(r.skipped.empty()) << r.node << ": " << r.skipped;
    EXPECT_LT(r.error, 1e-6) << r.node;
  }
  EXPECT_EQ(count_ops(g, "Gemm"), 4);
  EXPECT_EQ(count_ops(g, "MatMul"), 2);
  expect_same_outputs(original, g, at::randn({3, 7}), 1e-4, "full-rank svd");
}

TEST(Factorize, GeometryIsCarriedOnBothAxes) {
  test_support::TempDir dir;
  at::manual_seed(5);
  const std::vector<int64_t> strides = {2, 1}, pads = {1, 0, 2, 1}, dilations = {1, 2};
  at::Tensor x = at::randn({2, 6, 9, 11});
  struct Case {
    const char* method;
    at::Tensor kernel;
    factorize::RankRule rule;
    int convs;
  };
  std::vector<Case> cases = {
      {"tucker", tucker_kernel(8, 6, 3, 2, 3), {factorize::RankRule::Kind::Energy, 1.0}, 3},
      {"cp", cp_kernel(8, 6, 3, 3), {factorize::RankRule::Kind::Rank, 3}, 4},
      {"svd", at::randn({4, 6, 3, 3}), {factorize::RankRule::Kind::Rank, 4}, 2},
  };
  for (auto& c : cases) {
    ir::Graph g = conv_graph(dir, c.kernel, strides, pads, dilations);
    ir::Graph original = g.clone();
    factorize::FactorizeOptions o;
    o.method = c.method;
    o.rule = c.rule;
    o.tolerance = 1e-12;
    o.max_iterations = 3000;
    o.allow_growth = true;
    auto results = factorize::factorize(g, o);
    ASSERT_EQ(results.size(), 1u);
    ASSERT_TRUE(results[0].skipped.empty()) << c.method << ": " << results[0].skipped;
    EXPECT_EQ(count_ops(g, "Conv"), c.convs) << c.method;
    expect_same_outputs(original, g, x, 1e-3, c.method);
  }
  // Energy 1.0 finds the kernel's multilinear rank (2 in, 3 out).
  ir::Graph g = conv_graph(dir, tucker_kernel(8, 6, 3, 2, 3), strides, pads, dilations);
  factorize::FactorizeOptions o;
  o.method = "tucker";
  o.rule = {factorize::RankRule::Kind::Energy, 0.999999};
  auto results = factorize::factorize(g, o);
  EXPECT_EQ(results[0].ranks, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(results[0].method, "tucker2");
}

TEST(Factorize, RefusalsNameTheLayerAndOthersProceed) {
  test_support::TempDir dir;
  at::manual_seed(6);
  OnnxBuilder b;
  b.input("x", {2, 3, 8, 8}).output("y");
  b.initializer("w1", at::randn({16, 3, 3, 3})).initializer("w2", at::randn({16, 16, 3, 3}));
  auto& c1 = b.node("Conv", {"x", "w1"}, {"a"}, "conv1");
  OnnxBuilder::attr(c1, "pads", std::vector<int64_t>{1, 1, 1, 1});
  b.node("Relu", {"a"}, {"r"}, "relu");
  b.node("Conv", {"r", "w2"}, {"y"}, "conv2");
  std::string path = b.save(dir.file("m.onnx"));

  // SVD rank 20 is above both layers' break-even (16*27/43 = 10.0 and 16*144/160 = 14.4).
  ir::Graph g = onnx_io::import_model(path);
  factorize::FactorizeOptions o;
  o.method = "svd";
  o.rule = {factorize::RankRule::Kind::Rank, 12};
  auto results = factorize::factorize(g, o);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_NE(results[0].skipped.find("break-even rank 10.04"), std::string::npos) << results[0].skipped;
  EXPECT_TRUE(results[1].skipped.empty()) << results[1].skipped;
  EXPECT_EQ(results[1].params_after, 12 * (16 + 144));

  // Tucker on a 3-channel input is Tucker-1; a CP that cannot converge in 1 iteration is refused.
  g = onnx_io::import_model(path);
  o.method = "tucker";
  o.rule = {factorize::RankRule::Kind::Rank, 4};
  results = factorize::factorize(g, o);
  EXPECT_EQ(results[0].method, "tucker1");
  EXPECT_EQ(results[0].ranks, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(results[1].method, "tucker2");
  g = onnx_io::import_model(path);
  o.method = "cp";
  o.max_iterations = 1;
  results = factorize::factorize(g, o);
  EXPECT_NE(results[1].skipped.find("did not converge in 1 iterations"), std::string::npos) << results[1].skipped;
  EXPECT_EQ(count_ops(g, "Conv"), 2);  // nothing half-rewritten

  o.layers = {"relu"};
  results = factorize::factorize(g, o);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].skipped, "not a Gemm, MatMul or Conv");
  o.layers = {"nope"};
  EXPECT_THROW(factorize::factorize(g, o), Error);
  EXPECT_THROW(factorize::parse_rank("0"), Error);
  EXPECT_EQ(factorize::parse_rank("vbmf").kind, factorize::RankRule::Kind::Vbmf);
}

TEST(Factorize, SearchFindsTheSmallestRankWithinTolerance) {
  test_support::TempDir dir;
  at::manual_seed(7);
  OnnxBuilder b;
  b.input("x", {-1, 40}).output("y");
  b.initializer("W", at::randn({40, 30}));
  b.node("MatMul", {"x", "W"}, {"y"}, "mm");
  ir::Graph g = onnx_io::import_model(b.save(dir.file("m.onnx")));
  // "Accuracy" 1 while the factor rank is at least 9, else 0: the search must land on 9.
  factorize::SearchOptions s;
  s.tolerance = 0.5;
  int evaluations = 0;
  s.accuracy = [&](const ir::Graph& m) {
    ++evaluations;
    for (const auto& n : m.nodes())
      if (n->name != "mm" && n->op_type == "MatMul") return m.initializer(n->input(1)->name)->tensor.size(1) >= 9 ? 1.0 : 0.0;
    return 1.0;
  };
  factorize::FactorizeOptions o;
  auto results = factorize::factorize_search(g, o, s);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].ranks, std::vector<int64_t>{9});
  EXPECT_LE(evaluations, 1 + 6);  // the start plus a binary search over ranks 1..17
  EXPECT_EQ(count_ops(g, "MatMul"), 2);
}
