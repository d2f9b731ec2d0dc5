// The model zoo: shapes, parameter counts from the papers, gradients, ONNX Runtime.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "shrink/exec/session.h"
#include "shrink/onnx/export.h"
#include "shrink/ops/shape_inference.h"
#include "shrink/report/model_stats.h"
#include "shrink/zoo/zoo.h"
#include "support/ort.h"

using namespace shrink;

class ZooModel : public ::testing::TestWithParam<std::string> {};

TEST_P(ZooModel, BuildsRunsTrainsAndAgreesWithOnnxRuntime) {
  for (std::vector<int64_t> input : {std::vector<int64_t>{1, 28, 28}, std::vector<int64_t>{3, 32, 32}}) {
    zoo::ModelOptions o;
    o.input = input;
    o.classes = 7;
    ir::Graph g = zoo::build_model(GetParam(), o);
    ops::verify_graph(g);
    at::Tensor x = at::randn({2, input[0], input[1], input[2]});
    at::Tensor y = exec::run_once(g, {x})[0];
    EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 7}));
    test_support::TempDir dir;
    onnx_io::export_model(g, dir.file("m.onnx"));
    at::Tensor ort = test_support::run_onnxruntime(dir.file("m.onnx"), {x})[0];
    EXPECT_LE((ort - y).abs().max().item<double>(), 1e-4);
    // Training mode: every parameter receives a gradient.
    exec::Session s(g, {true, {}});
    s.run({x})[0].pow(2).sum().backward();
    for (const auto& [name, init] : g.initializers())
      if (init.kind == ir::InitKind::Parameter)
        EXPECT_TRUE(init.tensor.grad().defined() && init.tensor.grad().abs().sum().item<double>() > 0) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Zoo, ZooModel,
                         ::testing::Values("mlp", "lenet300", "lenet5", "lenet5-caffe", "resnet20", "mobilenetv2", "squeezenet",
                                           "shufflenetv2"));

TEST(Zoo, ParameterCountsMatchThePapers) {
  auto params = [](const std::string& name, std::vector<int64_t> input) {
    zoo::ModelOptions o;
    o.input = input;
    return report::model_stats(zoo::build_model(name, o)).parameters;
  };
  EXPECT_EQ(params("mlp", {1, 28, 28}), 784 * 128 + 128 + 128 * 10 + 10);
  EXPECT_EQ(params("lenet300", {1, 28, 28}), 784 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10);
  EXPECT_EQ(params("lenet5", {1, 28, 28}), 61706);
  // Caffe's LeNet-5, 431K in Han et al. 2015 (Table 2: 431K weights), 1720 KB in Deep
  // Compression's Table 1.
  EXPECT_EQ(params("lenet5-caffe", {1, 28, 28}), 20 * 25 + 20 + 50 * 20 * 25 + 50 + 800 * 500 + 500 + 500 * 10 + 10);
  // ResNet-20 has 0.27M (269,722 with identity shortcuts); the two 1x1 projection
  // shortcuts with BatchNorm add 16*32 + 32*64 + 2*(32 + 64).
  EXPECT_EQ(params("resnet20", {3, 32, 32}), 269722 + 16 * 32 + 32 * 64 + 2 * (32 + 64));
  EXPECT_THROW(zoo::build_model("vgg99", {}), Error);
}
