// The model zoo: shapes, parameter counts from the papers, gradients, ONNX Runtime.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>

#include "shrink/exec/session.h"
#include "shrink/onnx/export.h"
#include "shrink/ops/shape_inference.h"
#include "shrink/report/model_stats.h"
#include "shrink/zoo/zoo.h"
#include "shrink/io/npy.h"
#include "support/ort.h"
#include "support/paths.h"
#include "support/process.h"

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
      if (init.kind == ir::InitKind::Parameter) {
        EXPECT_TRUE(init.tensor.grad().defined() && init.tensor.grad().abs().sum().item<double>() > 0) << name;
      }
  }
}

INSTANTIATE_TEST_SUITE_P(Zoo, ZooModel,
                         ::testing::Values("mlp", "lenet300", "lenet5", "lenet5-caffe", "resnet20", "mobilenetv2", "squeezenet",
                                           "shufflenetv2", "vit"));

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

// The zoo's ViT computes what torchvision's VisionTransformer computes with the same
// weights (its conv_proj given one input channel): every initializer is randomised
// first, so a LayerNorm, token or projection mapped wrongly shows.
TEST(Zoo, VitEqualsTorchvisionsVisionTransformer) {
  zoo::ModelOptions o;
  o.depth = 2;
  o.heads = 4;
  ir::Graph g = zoo::build_model("vit", o);
  test_support::TempDir dir;
  at::manual_seed(3);
  std::vector<std::string> names;
  for (const auto& [name, init] : g.initializers())
    if (init.kind == ir::InitKind::Parameter) names.push_back(name);
  for (const auto& name : names) {
    at::NoGradGuard no_grad;
    at::Tensor& t = g.initializer(name)->tensor;
    t.copy_(at::randn_like(t) * 0.3);
    io::write_npy(dir.file(name + ".npy"), t);
  }
  at::Tensor x = at::randn({3, 1, 28, 28});
  io::write_npy(dir.file("x.npy"), x);
  std::ofstream(dir.file("ref.py")) << R"(import sys, numpy as np, torch, torchvision
d = sys.argv[1]
L = lambda n: torch.from_numpy(np.load(f"{d}/{n}.npy"))
m = torchvision.models.VisionTransformer(image_size=28, patch_size=4, num_layers=2, num_heads=4, hidden_dim=64,
                                         mlp_dim=128, num_classes=10).eval()
m.conv_proj = torch.nn.Conv2d(1, 64, 4, 4)
s = {"class_token": L("class_token"), "conv_proj.weight": L("patch.conv.weight"), "conv_proj.bias": L("patch.conv.bias"),
     "encoder.pos_embedding": L("pos_embedding"), "encoder.ln.weight": L("ln.weight"), "encoder.ln.bias": L("ln.bias"),
     "heads.head.weight": L("head.fc.weight"), "heads.head.bias": L("head.fc.bias")}
for i in range(2):
    p, q = f"encoder.layers.encoder_layer_{i}.", f"encoder.{i}."
    s[p + "ln_1.weight"], s[p + "ln_1.bias"] = L(q + "attn.ln.weight"), L(q + "attn.ln.bias")
    s[p + "ln_2.weight"], s[p + "ln_2.bias"] = L(q + "mlp.ln.weight"), L(q + "mlp.ln.bias")
    s[p + "self_attention.in_proj_weight"] = torch.cat([L(q + f"attn.{k}.weight").t() for k in "qkv"])
    s[p + "self_attention.in_proj_bias"] = torch.cat([L(q + f"attn.{k}.bias") for k in "qkv"])
    s[p + "self_attention.out_proj.weight"] = L(q + "attn.out.weight").t()
    s[p + "self_attention.out_proj.bias"] = L(q + "attn.out.bias")
    for a, b in (("mlp.0", "mlp.fc1"), ("mlp.3", "mlp.fc2")):
        s[p + a + ".weight"], s[p + a + ".bias"] = L(q + b + ".weight").t(), L(q + b + ".bias")
m.load_state_dict(s)
with torch.no_grad():
    np.save(f"{d}/y.npy", m(L("x")).numpy())
)";
  auto r = test_support::run_command(test_support::python() + " " + dir.file("ref.py") + " " + dir.path);
  ASSERT_EQ(r.status, 0) << r.output;
  at::Tensor want = io::read_npy(dir.file("y.npy"));
  at::Tensor got = exec::run_once(g, {x})[0];
  ASSERT_EQ(got.sizes(), want.sizes());
  ASSERT_GT(want.abs().max().item<double>(), 0.1);
  EXPECT_LE((got - want).abs().max().item<double>(), 1e-4 * want.abs().max().item<double>());
}

TEST(Zoo, VitShapeOptions) {
  zoo::ModelOptions o;
  o.depth = 3;
  o.heads = 2;
  o.width = 0.5;
  ir::Graph g = zoo::build_model("vit", o);
  int ln = 0;
  for (const auto& n : g.nodes()) ln += n->op_type == "LayerNormalization";
  EXPECT_EQ(ln, 2 * 3 + 1);
  EXPECT_EQ(g.initializer("encoder.0.attn.q.weight")->tensor.sizes(), (std::vector<int64_t>{32, 32}));
  o.heads = 5;  // 32 does not divide by 5
  EXPECT_THROW(zoo::build_model("vit", o), Error);
  o.heads = 2;
  EXPECT_THROW(zoo::build_model("lenet5", o), Error);  // depth and heads are vit's
}
