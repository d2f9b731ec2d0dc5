// Every pass, differentially: outputs before vs after on seeded inputs, what changed
// in the graph, and the verifier after each stage (ORT's TransformerTester idea).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "shrink/core/error.h"
#include "shrink/exec/session.h"
#include "shrink/onnx/import.h"
#include "shrink/ops/shape_inference.h"
#include "shrink/passes/pass.h"
#include "support/onnx_builder.h"
#include "support/paths.h"
#include "support/process.h"

using namespace shrink;
using ir::TensorType;

namespace {

std::map<std::string, int> op_counts(const ir::Graph& g) {
  std::map<std::string, int> counts;
  for (const auto& n : g.nodes()) counts[n->op_type]++;
  return counts;
}

// Runs `pipeline` on g; checks outputs agree within tol and returns whether it changed.
bool check_pass(ir::Graph& g, const std::string& pipeline, const std::vector<at::Tensor>& inputs,
                double tol = 1e-5) {
  std::vector<at::Tensor> before = exec::run_once(g, inputs);
  std::vector<std::string> outputs_before;
  for (auto* v : g.outputs()) outputs_before.push_back(v->name);
  bool changed = false;
  for (const auto& stage : passes::make_pipeline(pipeline).run(g, /*verify=*/true)) changed |= stage.changed;
  std::vector<at::Tensor> after = exec::run_once(g, inputs);
  EXPECT_EQ(before.size(), after.size());
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_EQ(g.outputs()[i]->name, outputs_before[i]) << "graph output renamed";
    double scale = std::max(1.0, before[i].abs().max().item<double>());
    EXPECT_LE((before[i] - after[i]).abs().max().item<double>(), tol * scale) << pipeline << " output " << i;
  }
  return changed;
}

ir::Value* param(ir::Graph& g, const std::string& name, at::Tensor t) {
  return g.add_initializer(name, t, ir::InitKind::Parameter);
}

// A BatchNormalization with random statistics after `x`.
ir::Node* add_bn(ir::Graph& g, ir::Value* x, int64_t channels, const std::string& name) {
  ir::Value* s = param(g, name + ".s", at::rand({channels}) + 0.5);
  ir::Value* b = param(g, name + ".b", at::randn({channels}));
  ir::Value* m = g.add_initializer(name + ".m", at::randn({channels}), ir::InitKind::Buffer);
  ir::Value* v = g.add_initializer(name + ".v", at::rand({channels}) + 0.5, ir::InitKind::Buffer);
  return g.add_node("BatchNormalization", {x, s, b, m, v}, {name + ".y"}, {}, name);
}

}  // namespace

TEST(FuseBatchNorm, ConvWithAndWithoutBiasAndSharedWeights) {
  at::manual_seed(0);
  ir::Graph g;
  ir::Value* x = g.add_input("x", TensorType::of(at::kFloat, {ir::kDynamic, 3, 8, 8}));
  ir::Value* w = param(g, "W", at::randn({4, 3, 3, 3}));
  ir::Node* c1 = g.add_node("Conv", {x, w, param(g, "B", at::randn({4}))}, {"c1"});
  ir::Node* c2 = g.add_node("Conv", {x, w}, {"c2"});  // shares W, no bias
  ir::Node* bn1 = add_bn(g, c1->output(0), 4, "bn1");
  ir::Node* bn2 = add_bn(g, c2->output(0), 4, "bn2");
  ir::Node* sum = g.add_node("Add", {bn1->output(0), bn2->output(0)}, {"y"});
  g.add_output(sum->output(0));
  ops::infer_shapes(g);
  EXPECT_TRUE(check_pass(g, "fuse_batch_norm", {at::randn({2, 3, 8, 8})}));
  EXPECT_EQ(op_counts(g).count("BatchNormalization"), 0u);
  EXPECT_EQ(op_counts(g)["Conv"], 2);
  EXPECT_EQ(g.initializer("bn1.m"), nullptr);  // buffers of folded BNs are gone
  EXPECT_NE(g.nodes()[0]->input(1), g.nodes()[1]->input(1));  // shared W was not overwritten for both
}

TEST(FuseBatchNorm, ConvTransposeGroupedGemmAndMatMul) {
  at::manual_seed(1);
  ir::Graph g;
  ir::Value* x = g.add_input("x", TensorType::of(at::kFloat, {2, 4, 5, 5}));
  ir::Attributes grp;
  grp.set("group", int64_t{2});
  ir::Node* ct = g.add_node("ConvTranspose", {x, param(g, "Wt", at::randn({4, 3, 3, 3}))}, {"ct"}, grp);
  ir::Node* bn = add_bn(g, ct->output(0), 6, "bn_ct");
  ir::Node* pool = g.add_node("GlobalAveragePool", {bn->output(0)}, {"p"});
  ir::Node* flat = g.add_node("Flatten", {pool->output(0)}, {"f"});
  ir::Attributes ab;
  ab.set("transB", int64_t{1});
  ab.set("alpha", 0.5f);
  ab.set("beta", 2.0f);
  ir::Node* gemm = g.add_node("Gemm", {flat->output(0), param(g, "Wg", at::randn({5, 6})), param(g, "Cg", at::randn({5}))}, {"g"}, ab);
  ir::Node* bn2 = add_bn(g, gemm->output(0), 5, "bn_g");
  ir::Node* mm = g.add_node("MatMul", {bn2->output(0), param(g, "Wm", at::randn({5, 3}))}, {"m"});
  ir::Node* bn3 = add_bn(g, mm->output(0), 3, "bn_m");
  g.add_output(bn3->output(0));
  ops::infer_shapes(g);
  EXPECT_TRUE(check_pass(g, "fuse_batch_norm", {at::randn({2, 4, 5, 5})}));
  auto counts = op_counts(g);
  EXPECT_EQ(counts.count("BatchNormalization"), 0u);
  EXPECT_EQ(counts["Gemm"], 2);  // the MatMul became a Gemm with the folded bias
  EXPECT_EQ(counts.count("MatMul"), 0u);
  EXPECT_EQ(g.outputs()[0]->name, "bn_m.y");
}

TEST(FuseBatchNorm, LeavesTrainingModeAndNonLinearProducersAlone) {
  at::manual_seed(2);
  ir::Graph g;
  ir::Value* x = g.add_input("x", TensorType::of(at::kFloat, {2, 3, 4, 4}));
  ir::Node* relu = g.add_node("Relu", {x}, {"r"});
  ir::Node* bn = add_bn(g, relu->output(0), 3, "bn_after_relu");
  ir::Node* conv = g.add_node("Conv", {bn->output(0), param(g, "W", at::randn({3, 3, 1, 1}))}, {"c"});
  ir::Node* bn2 = add_bn(g, conv->output(0), 3, "bn_train");
  bn2->attrs.set("training_mode", int64_t{1});
  g.add_output(bn2->output(0));
  ops::infer_shapes(g);
  EXPECT_FALSE(check_pass(g, "fuse_batch_norm", {at::randn({2, 3, 4, 4})}));
  EXPECT_EQ(op_counts(g)["BatchNormalization"], 2);
}

TEST(RemoveIdentity, DropsIdentityAndInferenceDropoutKeepsOutputNames) {
  ir::Graph g;
  ir::Value* x = g.add_input("x", TensorType::of(at::kFloat, {2, 3}));
  ir::Node* relu = g.add_node("Relu", {x}, {"r"});
  ir::Node* id = g.add_node("Identity", {relu->output(0)}, {"i"});
  ir::Node* drop = g.add_node("Dropout", {id->output(0)}, {"d"});
  ir::Node* neg = g.add_node("Neg", {drop->output(0)}, {"n"});
  ir::Node* out = g.add_node("Identity", {neg->output(0)}, {"y"});
  ir::Node* passthrough = g.add_node("Identity", {x}, {"x_copy"});  // input -> output: must stay
  g.add_output(out->output(0));
  g.add_output(passthrough->output(0));
  ops::infer_shapes(g);
  EXPECT_TRUE(check_pass(g, "remove_identity", {at::randn({2, 3})}, 0.0));
  auto counts = op_counts(g);
  EXPECT_EQ(counts["Identity"], 1);
  EXPECT_EQ(counts.count("Dropout"), 0u);
  EXPECT_EQ(g.outputs()[0]->producer->op_type, "Neg");
}

TEST(CanonicalizeGemm, MatMulPlusBiasBecomesGemmOnlyWhenValid) {
  at::manual_seed(3);
  ir::Graph g;
  ir::Value* x = g.add_input("x", TensorType::of(at::kFloat, {ir::kDynamic, 4}));
  ir::Node* mm = g.add_node("MatMul", {x, param(g, "W", at::randn({4, 3}))}, {"m"});
  ir::Node* add = g.add_node("Add", {param(g, "b", at::randn({1, 3})), mm->output(0)}, {"y"});
  ir::Value* x3 = g.add_input("x3", TensorType::of(at::kFloat, {2, 5, 4}));
  ir::Node* mm3 = g.add_node("MatMul", {x3, param(g, "W3", at::randn({4, 3}))}, {"m3"});
  ir::Node* add3 = g.add_node("Add", {mm3->output(0), param(g, "b3", at::randn({3}))}, {"y3"});
  g.add_output(add->output(0));
  g.add_output(add3->output(0));
  ops::infer_shapes(g);
  EXPECT_TRUE(check_pass(g, "canonicalize_gemm", {at::randn({6, 4}), at::randn({2, 5, 4})}));
  auto counts = op_counts(g);
  EXPECT_EQ(counts["Gemm"], 1);
  EXPECT_EQ(counts["MatMul"], 1);  // the 3-D one stays
  EXPECT_EQ(g.outputs()[0]->producer->op_type, "Gemm");
}

TEST(EliminateDeadCode, RemovesUnusedNodesAndInitializers) {
  ir::Graph g;
  ir::Value* x = g.add_input("x", TensorType::of(at::kFloat, {2}));
  ir::Node* used = g.add_node("Relu", {x}, {"y"});
  ir::Node* dead = g.add_node("Mul", {x, g.add_initializer("k", at::ones({2}), ir::InitKind::Constant)}, {"dead"});
  g.add_node("Neg", {dead->output(0)}, {"dead2"});
  g.add_output(used->output(0));
  ops::infer_shapes(g);
  EXPECT_TRUE(check_pass(g, "eliminate_dead_code", {at::randn({2})}, 0.0));
  EXPECT_EQ(g.nodes().size(), 1u);
  EXPECT_EQ(g.initializer("k"), nullptr);
  EXPECT_FALSE(check_pass(g, "eliminate_dead_code", {at::randn({2})}, 0.0));
}

TEST(FoldConstants, ConstantSubgraphBecomesOneInitializer) {
  ir::Graph g;
  ir::Value* x = g.add_input("x", TensorType::of(at::kFloat, {2}));
  ir::Value* a = g.add_initializer("a", at::tensor({1.0f, 2.0f}), ir::InitKind::Constant);
  ir::Node* e = g.add_node("Exp", {a}, {"ea"});
  ir::Node* n = g.add_node("Neg", {e->output(0)}, {"nea"});
  ir::Node* y = g.add_node("Add", {x, n->output(0)}, {"y"});
  g.add_output(y->output(0));
  ops::infer_shapes(g);
  EXPECT_TRUE(check_pass(g, "fold_constants,eliminate_dead_code", {at::randn({2})}, 0.0));
  EXPECT_EQ(g.nodes().size(), 1u);
  ASSERT_NE(g.initializer("nea"), nullptr);
  EXPECT_TRUE(at::allclose(g.initializer("nea")->tensor, -at::exp(at::tensor({1.0f, 2.0f}))));
}

// Exact GELU in the forms PyTorch and the zoo write it becomes one Gelu node whose output is
// the hand formula 0.5 x (1 + erf(x / sqrt 2)) in double; a near miss (Add 2) stays as it is.
TEST(FuseGelu, EveryExportedFormBecomesOneNodeAndNearMissesStay) {
  at::manual_seed(3);
  auto scalar = [](ir::Graph& g, const std::string& name, float v) {
    return g.add_initializer(name, at::tensor({v}).reshape({}), ir::InitKind::Constant);
  };
  enum Form { kDivThenHalfLast, kMulThenHalfLast, kHalfFirst, kAddTwo };
  for (Form form : {kDivThenHalfLast, kMulThenHalfLast, kHalfFirst, kAddTwo}) {
    ir::Graph g;
    ir::Value* in = g.add_input("x", TensorType::of(at::kFloat, {4, 30}));
    ir::Value* x = g.add_node("Relu", {in}, {"r"})->output(0);  // x has other users too
    ir::Value* scaled = form == kMulThenHalfLast
                            ? g.add_node("Mul", {x, scalar(g, "c", 1.0f / std::sqrt(2.0f))}, {"s"})->output(0)
                            : g.add_node("Div", {x, scalar(g, "c", std::sqrt(2.0f))}, {"s"})->output(0);
    ir::Value* e = g.add_node("Erf", {scaled}, {"e"})->output(0);
    ir::Value* plus = g.add_node("Add", {scalar(g, "one", form == kAddTwo ? 2.0f : 1.0f), e}, {"p"})->output(0);
    ir::Value* y;
    if (form == kHalfFirst) {
      ir::Value* half = g.add_node("Mul", {x, scalar(g, "half", 0.5f)}, {"h"})->output(0);
      y = g.add_node("Mul", {half, plus}, {"y"})->output(0);
    } else {
      y = g.add_node("Mul", {g.add_node("Mul", {x, plus}, {"t"})->output(0), scalar(g, "half", 0.5f)}, {"y"})->output(0);
    }
    g.add_output(g.add_node("Add", {y, x}, {"z"})->output(0));
    ops::infer_shapes(g);
    at::Tensor input = at::randn({4, 30}) * 3;
    EXPECT_EQ(check_pass(g, "fuse_gelu,eliminate_dead_code", {input}), form != kAddTwo) << form;
    auto counts = op_counts(g);
    EXPECT_EQ(counts["Gelu"], form == kAddTwo ? 0 : 1) << form;
    EXPECT_EQ(counts["Erf"], form == kAddTwo ? 1 : 0) << form;
    if (form == kAddTwo) continue;
    at::Tensor r = input.to(at::kDouble).relu();
    at::Tensor want = 0.5 * r * (1 + at::erf(r / std::sqrt(2.0))) + r;
    EXPECT_LE((exec::run_once(g, {input})[0].to(at::kDouble) - want).abs().max().item<double>(), 1e-5) << form;
  }
}

TEST(Pipeline, UnknownPassIsAnErrorNamingTheKnownOnes) {
  try {
    passes::make_pipeline("fold_constants,nope");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown pass 'nope' (known: canonicalize_gemm, "), std::string::npos);
  }
}

// torchvision networks exported with their BatchNormalization nodes (inference
// statistics): the inference pipeline removes every one, outputs stay within 1e-5.
class FoldTorchvision : public ::testing::TestWithParam<std::string> {};

TEST_P(FoldTorchvision, InferencePipelineFoldsEveryBatchNorm) {
  test_support::TempDir dir;
  std::string cmd = test_support::python() + " " + SHRINK_SOURCE_DIR + "/tools/export_torchvision.py --bn-eval --size 64 --model " +
                    GetParam() + " --out " + dir.path;
  auto r = test_support::run_command(cmd);
  ASSERT_EQ(r.status, 0) << r.output;
  ir::Graph g = onnx_io::import_model(dir.file("model.onnx"));
  ASSERT_GT(op_counts(g)["BatchNormalization"], 0);
  at::manual_seed(4);
  EXPECT_TRUE(check_pass(g, "inference", {at::randn({2, 3, 64, 64})}));
  EXPECT_EQ(op_counts(g).count("BatchNormalization"), 0u);
}

INSTANTIATE_TEST_SUITE_P(Torchvision, FoldTorchvision,
                         ::testing::Values("resnet18", "mobilenet_v2", "shufflenet_v2_x0_5"));

// fuse_conv: each activation form, a residual Add with a Relu after it, a depthwise and a
// dilated, strided convolution with asymmetric pads fuse into FusedConv nodes whose
// outputs equal the unfused graph's on ATen; a Conv whose output another node also reads
// fuses alone, and an Add of a broadcast operand stays an Add.
TEST(FuseConv, ActivationsAndResidualsFuseAndComputeTheSame) {
  at::manual_seed(9);
  ir::Graph g;
  ir::Value* x = g.add_input("x", TensorType::of(at::kFloat, {2, 8, 11, 9}));
  auto conv = [&](ir::Value* in, int64_t out, int64_t k, ir::Attributes a, const std::string& name) {
    int64_t group = a.get_int("group", 1);
    std::vector<ir::Value*> inputs = {in, param(g, name + ".w", at::randn({out, 8 / group, k, k}) * 0.3),
                                      param(g, name + ".b", at::randn({out}) * 0.1)};
    return g.add_node("Conv", inputs, {name}, a)->output(0);
  };
  ir::Attributes same;
  same.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  ir::Value* a = g.add_node("Relu", {conv(x, 8, 3, same, "c1")}, {"r1"})->output(0);
  ir::Value* lo = g.add_initializer("lo", at::scalar_tensor(0.0f), ir::InitKind::Constant);
  ir::Value* hi = g.add_initializer("hi", at::scalar_tensor(6.0f), ir::InitKind::Constant);
  ir::Value* b = g.add_node("Clip", {conv(a, 8, 3, same, "c2"), lo, hi}, {"r6"})->output(0);
  ir::Value* c3 = conv(b, 8, 3, same, "c3");
  ir::Value* s = g.add_node("Sigmoid", {c3}, {"sig"})->output(0);
  ir::Value* silu = g.add_node("Mul", {c3, s}, {"silu"})->output(0);
  ir::Attributes dw = same;
  dw.set("group", int64_t{8});
  ir::Value* hs = g.add_node("HardSwish", {conv(silu, 8, 3, dw, "dw")}, {"hs"})->output(0);
  ir::Value* res = g.add_node("Add", {conv(hs, 8, 1, {}, "c4"), a}, {"res"})->output(0);  // residual from r1
  ir::Value* out = g.add_node("Relu", {res}, {"r2"})->output(0);
  ir::Attributes odd;
  odd.set("strides", std::vector<int64_t>{2, 1});
  odd.set("dilations", std::vector<int64_t>{2, 1});
  odd.set("pads", std::vector<int64_t>{0, 2, 1, 0});
  ir::Value* c5 = conv(out, 8, 3, odd, "c5");
  ir::Value* bias = param(g, "bcast", at::randn({8, 1, 1}));
  g.add_output(g.add_node("Add", {c5, bias}, {"shift"})->output(0));
  g.add_output(c5);  // read twice: fuses alone
  ops::infer_shapes(g);
  at::Tensor input = at::randn({2, 8, 11, 9});
  EXPECT_TRUE(check_pass(g, "fuse_conv,eliminate_dead_code", {input}, 1e-5));
  auto counts = op_counts(g);
  EXPECT_EQ(counts["FusedConv"], 6);
  EXPECT_EQ(counts["Conv"] + counts["Relu"] + counts["Clip"] + counts["Sigmoid"] + counts["HardSwish"], 0);
  EXPECT_EQ(counts["Mul"], 0);
  EXPECT_EQ(counts["Add"], 1);  // the broadcast shift
  std::map<std::string, std::string> post;
  for (const auto& n : g.nodes())
    if (n->op_type == "FusedConv") post[n->output(0)->name] = n->attrs.get_string("post", "");
  EXPECT_EQ(post["r1"], "relu");
  EXPECT_EQ(post["r6"], "clip");
  EXPECT_EQ(post["silu"], "silu");
  EXPECT_EQ(post["hs"], "hardswish");
  EXPECT_EQ(post["r2"], "sum,relu");
  EXPECT_EQ(post["c5"], "");
}
