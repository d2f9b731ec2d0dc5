// Models PyTorch exports (torchvision, random seeded weights) import and run with
// outputs equal to PyTorch's, in eval mode and with TrainingMode.TRAINING.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "shrink/exec/session.h"
#include "shrink/factorize/factorize.h"
#include "shrink/io/npy.h"
#include "shrink/onnx/export.h"
#include "shrink/onnx/import.h"
#include "support/ort.h"
#include "support/onnx_builder.h"
#include "support/paths.h"
#include "support/process.h"

using namespace shrink;

class TorchvisionModel : public ::testing::TestWithParam<std::tuple<std::string, bool>> {};

TEST_P(TorchvisionModel, MatchesPyTorch) {
  auto [model, training] = GetParam();
  test_support::TempDir dir;
  std::string cmd = test_support::python() + " " + SHRINK_SOURCE_DIR + "/tools/export_torchvision.py --model " + model +
                    " --out " + dir.path + (training ? " --training" : "");
  auto r = test_support::run_command(cmd);
  ASSERT_EQ(r.status, 0) << cmd << "\n" << r.output;
  ir::Graph g = onnx_io::import_model(dir.file("model.onnx"));
  if (training && model != "squeezenet1_1") {  // SqueezeNet has no BatchNormalization
    int kept = 0;
    for (const auto& n : g.nodes()) kept += n->op_type == "BatchNormalization";
    EXPECT_GT(kept, 0) << "training export should keep BatchNormalization";
  }
  at::Tensor x = io::read_npy(dir.file("input.npy"));
  at::Tensor want = io::read_npy(dir.file("output.npy"));
  at::Tensor got = exec::run_once(g, {x})[0];
  ASSERT_EQ(got.sizes(), want.sizes());
  double err = (got - want).abs().max().item<double>();
  EXPECT_LE(err, 1e-4) << model << (training ? " (training)" : " (eval)");

  // shrink's export runs in ONNX Runtime with the same outputs.
  onnx_io::export_model(g, dir.file("shrink.onnx"));
  at::Tensor ort = test_support::run_onnxruntime(dir.file("shrink.onnx"), {x})[0];
  EXPECT_LE((ort - got).abs().max().item<double>(), 1e-4) << "ONNX Runtime on shrink's export";
}

INSTANTIATE_TEST_SUITE_P(
    Torchvision, TorchvisionModel,
    ::testing::Combine(::testing::Values("resnet18", "mobilenet_v2", "squeezenet1_1", "shufflenet_v2_x0_5"),
                       ::testing::Bool()),
    [](const auto& info) {
      return std::get<0>(info.param) + (std::get<1>(info.param) ? "_training" : "_eval");
    });

// torchvision's ResNet-18 as PyTorch exports it, its 3x3 convolutions Tucker-2 factorized
// (ranks for 2x fewer weights each), then every layer left - the Tucker factors too - SVD-factorized
// at 2x: the chained factorizations export to a model that runs in ONNX Runtime with the expected output shape, close to shrink's.
TEST(TorchvisionFactorized, ResNet18RunsInOnnxRuntime) {
  test_support::TempDir dir;
  std::string cmd = test_support::python() + " " + SHRINK_SOURCE_DIR + "/tools/export_torchvision.py --model resnet18 --out " +
                    dir.path;
  auto r = test_support::run_command(cmd);
  ASSERT_EQ(r.status, 0) << cmd << "\n" << r.output;
  ir::Graph g = onnx_io::import_model(dir.file("model.onnx"));
  factorize::FactorizeOptions o;
  o.method = "tucker";
  o.rule = {factorize::RankRule::Kind::Ratio, 2.0};
  int tucker = 0, svd = 0;
  for (const auto& l : factorize::factorize(g, o)) tucker += l.skipped.empty();
  o.method = "svd";
  o.rule = {factorize::RankRule::Kind::Ratio, 2.0};
  for (const auto& l : factorize::factorize(g, o)) svd += l.skipped.empty() && l.method == "svd";
  EXPECT_EQ(tucker, 17);  // the stem's 7x7 and the sixteen 3x3 convolutions
  EXPECT_GE(svd, 20);     // Tucker factors, the downsampling 1x1s and fc
  at::Tensor x = io::read_npy(dir.file("input.npy"));
  at::Tensor got = exec::run_once(g, {x})[0];
  onnx_io::export_model(g, dir.file("factorized.onnx"));
  at::Tensor ort = test_support::run_onnxruntime(dir.file("factorized.onnx"), {x})[0];
  ASSERT_EQ(ort.sizes(), (std::vector<int64_t>{x.size(0), 1000}));
  EXPECT_LE((ort - got).abs().max().item<double>(), 1e-3);
}
