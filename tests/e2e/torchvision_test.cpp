// Models PyTorch exports (torchvision, random seeded weights) import and run with
// outputs equal to PyTorch's, in eval mode and with TrainingMode.TRAINING.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <fstream>
#include <string>

#include "shrink/exec/session.h"
#include "shrink/factorize/factorize.h"
#include "shrink/io/npy.h"
#include "shrink/onnx/export.h"
#include "shrink/onnx/import.h"
#include "shrink/passes/inference_passes.h"
#include "shrink/passes/pass.h"
#include "shrink/prune/heads.h"
#include "shrink/prune/structured.h"
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

  // As deployed: the inference pipeline on both backends (onednn: convolutions fused with
  // their activations and residual Adds on channels-last activations).
  if (!training) {
    for (const char* backend : {"onednn", "aten"}) {
      passes::set_inference_backend(backend);
      ir::Graph deployed = g.clone();
      passes::make_pipeline("inference").run(deployed);
      int fused = 0;
      for (const auto& n : deployed.nodes()) fused += n->op_type == "FusedConv";
      EXPECT_EQ(fused > 0, std::string(backend) == "onednn") << model << " " << backend;
      at::Tensor y = exec::run_once(deployed, {x})[0];
      EXPECT_LE((y - want).abs().max().item<double>(), 1e-4 * std::max(1.0, want.abs().max().item<double>()))
          << model << " on " << backend;
    }
    passes::set_inference_backend("onednn");
  }

  // shrink's export runs in ONNX Runtime with the same outputs.
  onnx_io::export_model(g, dir.file("shrink.onnx"));
  at::Tensor ort = test_support::run_onnxruntime(dir.file("shrink.onnx"), {x})[0];
  EXPECT_LE((ort - got).abs().max().item<double>(), 1e-4) << "ONNX Runtime on shrink's export";
}

INSTANTIATE_TEST_SUITE_P(
    Torchvision, TorchvisionModel,
    ::testing::Combine(::testing::Values("resnet18", "mobilenet_v2", "squeezenet1_1", "shufflenet_v2_x0_5",
                                         "mobilenet_v3_small"),
                       ::testing::Bool()),
    [](const auto& info) {
      return std::get<0>(info.param) + (std::get<1>(info.param) ? "_training" : "_eval");
    });

// EfficientNet-B0 (SiLU, squeeze-and-excitation, depthwise) in eval mode only: PyTorch 1.13
// cannot export its stochastic depth in training mode.
INSTANTIATE_TEST_SUITE_P(TorchvisionEval, TorchvisionModel,
                         ::testing::Combine(::testing::Values("efficientnet_b0"), ::testing::Values(false)),
                         [](const auto& info) { return std::get<0>(info.param) + "_eval"; });

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

namespace {

// tools/export_torchvision.py with `args` into dir; "" when it worked, else the command and its output.
std::string export_torchvision(const test_support::TempDir& dir, const std::string& args) {
  std::string cmd = test_support::python() + " " + SHRINK_SOURCE_DIR + "/tools/export_torchvision.py " + args +
                    " --out " + dir.path;
  auto r = test_support::run_command(cmd);
  return r.status == 0 ? "" : cmd + "\n" + r.output;
}

// Extents of every value_info and output in an ONNX file: "?" unnamed, else the
// dim_param or the size.
std::vector<std::string> unnamed_extents(const std::string& path) {
  onnx::ModelProto m;
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(m.ParseFromIstream(&f)) << path;
  std::vector<std::string> out;
  auto scan = [&](const onnx::ValueInfoProto& vi) {
    for (const auto& d : vi.type().tensor_type().shape().dim())
      if (!d.has_dim_value() && d.dim_param().empty()) out.push_back(vi.name());
  };
  for (const auto& vi : m.graph().value_info()) scan(vi);
  for (const auto& vi : m.graph().output()) scan(vi);
  return out;
}

}  // namespace

// torchvision's ShuffleNetV2 exported with a symbolic batch at 56x56: its channel
// shuffles reshape to targets built from Shape -> Gather -> Concat. Every extent stays
// known up to the batch N, and the files shrink writes - converted, channel-pruned,
// Tucker-factorized - run in ONNX Runtime at batch sizes other than the traced one.
// (Unknown extents used to be written as d1, d2, ... shared across unrelated tensors,
// and ONNX Runtime failed re-using buffers on that false promise.)
TEST(TorchvisionSymbolicBatch, ShuffleNetKeepsExtentsAndRunsInOnnxRuntime) {
  test_support::TempDir dir;
  ASSERT_EQ(export_torchvision(dir, "--model shufflenet_v2_x0_5 --size 56 --batch 3 --dynamic-batch"), "");
  ir::Graph g = onnx_io::import_model(dir.file("model.onnx"));
  passes::make_pipeline("portable").run(g);
  for (const auto& n : g.nodes())
    for (const ir::Value* v : n->outputs()) {
      if (!v) continue;
      const ir::TensorType& t = v->type;
      bool known = t.has_shape;
      for (size_t i = 0; known && i < t.dims.size(); ++i)
        known = t.dims[i] >= 0 || (i < t.dim_names.size() && !t.dim_names[i].empty());
      EXPECT_TRUE(known) << n->describe() << ": " << v->name << " " << t.to_string();
    }
  at::Tensor x = io::read_npy(dir.file("input.npy"));
  at::Tensor want = io::read_npy(dir.file("output.npy"));
  EXPECT_LE((exec::run_once(g, {x})[0] - want).abs().max().item<double>(), 1e-4);
  onnx_io::export_model(g, dir.file("converted.onnx"));
  EXPECT_EQ(unnamed_extents(dir.file("converted.onnx")), std::vector<std::string>{});
  at::Tensor x5 = at::randn({5, 3, 56, 56}, at::TensorOptions().dtype(at::kFloat));
  for (const at::Tensor& in : {x, x5}) {
    at::Tensor got = exec::run_once(g, {in})[0];
    at::Tensor ort = test_support::run_onnxruntime(dir.file("converted.onnx"), {in})[0];
    EXPECT_LE((ort - got).abs().max().item<double>(), 1e-4) << "batch " << in.size(0);
  }

  ir::Graph pruned = g.clone();
  prune::StructuredOptions po;
  po.method = "l2";
  po.amount = 0.5;
  prune::StructuredReport report = prune::prune_structured(pruned, po);
  EXPECT_FALSE(report.pruned.empty());
  onnx_io::export_model(pruned, dir.file("pruned.onnx"));
  at::Tensor ort = test_support::run_onnxruntime(dir.file("pruned.onnx"), {x5})[0];
  EXPECT_LE((ort - exec::run_once(pruned, {x5})[0]).abs().max().item<double>(), 1e-4);

  factorize::FactorizeOptions fo;
  fo.method = "tucker";
  fo.rule = {factorize::RankRule::Kind::Ratio, 2.0};
  factorize::factorize(g, fo);
  onnx_io::export_model(g, dir.file("factorized.onnx"));
  ort = test_support::run_onnxruntime(dir.file("factorized.onnx"), {x5})[0];
  EXPECT_LE((ort - exec::run_once(g, {x5})[0]).abs().max().item<double>(), 1e-4);
}

// A prune that removes nothing (--amount 0) must not make the file bigger: PyTorch's
// shared initializers stay stored once and value_info stays as small as the
// exporter's. (A ViT's no-op prune grew 363,245 -> 368,999 bytes.)
TEST(TorchvisionSymbolicBatch, NoOpPruneDoesNotGrowTheFile) {
  test_support::TempDir dir;
  ASSERT_EQ(export_torchvision(dir, "--model vit_tiny --size 32 --dynamic-batch"), "");
  const std::string in = dir.file("model.onnx"), out = dir.file("pruned.onnx");
  auto r = test_support::run_command(std::string(SHRINK_CLI) + " prune " + in + " -o " + out +
                                " --method ln-structured --amount 0 --no-eval --no-latency");
  ASSERT_EQ(r.status, 0) << r.output;
  auto size = [](const std::string& p) { return static_cast<int64_t>(std::ifstream(p, std::ios::binary | std::ios::ate).tellg()); };
  EXPECT_LE(size(out), size(in));
  at::Tensor x = io::read_npy(dir.file("input.npy"));
  at::Tensor want = io::read_npy(dir.file("output.npy"));
  ASSERT_GT(want.abs().max().item<double>(), 1e-2);  // not a classifier left at zero
  at::Tensor ort = test_support::run_onnxruntime(out, {x})[0];
  EXPECT_LE((ort - want).abs().max().item<double>(), 1e-4);
}

// A torchvision ViT's MLP hidden units are pruned through the channels-last layout
// ([batch, tokens, features] -> MatMul -> Add -> GELU as Div/Erf/Add/Mul -> MatMul).
// Removing a hidden unit equals switching it off (its fc1 column and bias zeroed:
// GELU(0) = 0), so the pruned model's output must equal the original's with those
// units zeroed; ONNX Runtime runs the export with the same output.
TEST(TorchvisionSymbolicBatch, VitMlpHiddenUnitsArePruned) {
  test_support::TempDir dir;
  ASSERT_EQ(export_torchvision(dir, "--model vit_tiny --size 32 --dynamic-batch"), "");
  ir::Graph g = onnx_io::import_model(dir.file("model.onnx"));
  ir::Graph off = g.clone(), original = g.clone();
  prune::StructuredOptions po;
  po.method = "l2";
  po.amount = 0.5;
  // The MLP units alone: the attention blocks' heads (pruned too by default; see
  // Transformer.PackedAttentionHeadsArePrunedInPyTorchExports) are left by --ignore.
  for (const prune::PackedAttentionBlock& b : prune::find_packed_attention_blocks(g)) po.ignored.push_back(b.name);
  EXPECT_EQ(po.ignored.size(), 2u);
  prune::StructuredReport report = prune::prune_structured(g, po);
  int hidden = 0;
  for (const auto& n : off.nodes()) {
    if (n->op_type != "MatMul" || n->name.find("mlp.0") == std::string::npos) continue;
    auto it = report.kept.find(n->output(0)->name);
    ASSERT_NE(it, report.kept.end()) << n->name << " was not pruned";
    EXPECT_EQ(it->second.size(), 64u);  // half of 128
    at::Tensor mask = at::zeros({128}, at::kFloat);
    for (int64_t k : it->second) mask[k] = 1.0f;
    at::NoGradGuard no_grad;
    off.initializer(n->input(1)->name)->tensor.mul_(mask);
    for (ir::Node* u : n->output(0)->users)
      for (ir::Value* in : u->inputs())
        if (off.is_initializer(in)) off.initializer(in->name)->tensor.mul_(mask);
    ++hidden;
  }
  EXPECT_EQ(hidden, 2);
  at::Tensor x = at::randn({3, 3, 32, 32});
  at::Tensor want = exec::run_once(off, {x})[0];
  at::Tensor got = exec::run_once(g, {x})[0];
  ASSERT_GT(want.abs().max().item<double>(), 1e-2);  // not a classifier left at zero
  // Switching the units off changes the output: the comparison below can fail.
  EXPECT_GT((want - exec::run_once(original, {x})[0]).abs().max().item<double>(), 1e-3);
  EXPECT_LE((got - want).abs().max().item<double>(), 1e-4);
  onnx_io::export_model(g, dir.file("pruned.onnx"));
  at::Tensor ort = test_support::run_onnxruntime(dir.file("pruned.onnx"), {x})[0];
  EXPECT_LE((ort - got).abs().max().item<double>(), 1e-4);
}

// bench/torchvision_sweep.py on the smallest model of each of torchvision's 22
// families, all five checks (the table is in README): run, ORT on the converted file,
// extents known, channel pruning to <= 70% run by ORT, Tucker factorization run by ORT.
// The known failure: MaxViT keeps 71.7% (its attention heads are not pruned). Any other
// failure, or that one passing, fails. (swin_v2_t exports through the sweep's symbolic
// for aten::zero, which PyTorch 1.13 lacks.) The 22 models are `--smallest`'s choice on
// Debian 12's torchvision 0.14 (computing it builds all 80 models: 2 minutes), split in
// four parts of about equal time (VGG-11 alone takes 3.5 of the 12 minutes) so that
// ctest runs them beside the rest of the suite.
class TorchvisionSweep : public ::testing::TestWithParam<std::string> {};

TEST_P(TorchvisionSweep, SmallestOfEachFamilyPassesEveryCheck) {
  std::string models = GetParam();
  size_t count = 1 + std::count(models.begin(), models.end(), ',');
  std::string cmd = test_support::python() + " " + SHRINK_SOURCE_DIR + "/bench/torchvision_sweep.py --shrink " +
                    SHRINK_CLI + " --models " + models + " --expect-fail maxvit_t:d";
  auto r = test_support::run_command(cmd);
  EXPECT_EQ(r.status, 0) << cmd << "\n" << r.output;
  EXPECT_NE(r.output.find("(e) " + std::to_string(count) + " passed, 0 failed"), std::string::npos) << r.output;
}

INSTANTIATE_TEST_SUITE_P(Families, TorchvisionSweep,
                         ::testing::Values("vgg11", "alexnet,vit_b_16,maxvit_t,mnasnet0_5,squeezenet1_1",
                                           "wide_resnet50_2,efficientnet_v2_s,inception_v3,convnext_tiny,"
                                           "resnext50_32x4d,shufflenet_v2_x0_5,mobilenet_v3_small",
                                           "swin_v2_t,swin_t,densenet121,resnet18,googlenet,efficientnet_b0,"
                                           "regnet_y_400mf,regnet_x_400mf,mobilenet_v2"),
                         [](const auto& info) { return "part" + std::to_string(info.index + 1); });
