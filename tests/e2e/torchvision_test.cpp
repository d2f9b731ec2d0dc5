// Models PyTorch exports (torchvision, random seeded weights) import and run with
// outputs equal to PyTorch's, in eval mode and with TrainingMode.TRAINING.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "shrink/exec/session.h"
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
