// Ops checked against hand computations and shape rules.
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <gtest/gtest.h>

#include "shrink/core/error.h"
#include "shrink/exec/session.h"
#include "shrink/ops/registry.h"
#include "shrink/ops/shape_inference.h"

using namespace shrink;
using ir::TensorType;

namespace {

// A one-node graph over the given inputs (name, type) and constants.
struct OneOp {
  ir::Graph g;
  ir::Node* node = nullptr;
  OneOp(const std::string& op, const std::vector<std::pair<std::string, TensorType>>& inputs,
        const std::vector<std::pair<std::string, at::Tensor>>& constants, ir::Attributes attrs,
        size_t outputs = 1) {
    std::vector<ir::Value*> ins;
    for (auto& [n, t] : inputs) ins.push_back(g.add_input(n, t));
    for (auto& [n, t] : constants) ins.push_back(g.add_initializer(n, t, ir::InitKind::Constant));
    std::vector<std::string> outs;
    for (size_t i = 0; i < outputs; ++i) outs.push_back("y" + std::to_string(i));
    node = g.add_node(op, ins, outs, attrs, "op");
    for (ir::Value* o : node->outputs()) g.add_output(o);
    ops::infer_shapes(g);
  }
  std::string type(size_t i = 0) const { return node->output(i)->type.to_string(); }
};

ir::Attributes attrs(std::initializer_list<std::pair<std::string, ir::Attribute>> list) {
  ir::Attributes a;
  for (auto& [k, v] : list) a.set(k, v);
  return a;
}

}  // namespace

TEST(Ops, EveryRegisteredOpHasShapeFunctionAndKernel) {
  auto names = ops::OpRegistry::instance().names();
  EXPECT_GE(names.size(), 60u);
  for (const auto& n : names) {
    const ops::OpDef* d = ops::OpRegistry::instance().find(n);
    EXPECT_TRUE(d->infer) << n;
    EXPECT_TRUE(d->make_kernel) << n;
  }
}

// 3x3 input 1..9, 2x2 kernel of ones, pads top=1 left=0 bottom=0 right=1 (asymmetric):
// padded rows [0 0 0 | 1 2 3 | 4 5 6 | 7 8 9] with a zero column on the right.
TEST(Ops, ConvAsymmetricPadsMatchHandComputation) {
  OneOp op("Conv", {{"x", TensorType::of(at::kFloat, {1, 1, 3, 3})}},
           {{"w", at::ones({1, 1, 2, 2})}}, attrs({{"pads", std::vector<int64_t>{1, 0, 0, 1}}}));
  EXPECT_EQ(op.type(), "float32[1,1,3,3]");
  at::Tensor x = at::arange(1, 10, at::kFloat).view({1, 1, 3, 3});
  at::Tensor y = exec::run_once(op.g, {x})[0];
  at::Tensor want = at::tensor({3.f, 5.f, 3.f, 12.f, 16.f, 9.f, 24.f, 28.f, 15.f}).view({1, 1, 3, 3});
  EXPECT_TRUE(at::equal(y, want)) << y;
}

TEST(Ops, ConvSameUpperStride2Shape) {
  OneOp op("Conv", {{"x", TensorType::of(at::kFloat, {ir::kDynamic, 3, 7, 8})}},
           {{"w", at::zeros({5, 3, 3, 3})}},
           attrs({{"strides", std::vector<int64_t>{2, 2}}, {"auto_pad", std::string("SAME_UPPER")}}));
  EXPECT_EQ(op.type(), "float32[?,5,4,4]");  // ceil(7/2), ceil(8/2)
}

TEST(Ops, DepthwiseConvShapeAndChannelCheck) {
  OneOp ok("Conv", {{"x", TensorType::of(at::kFloat, {1, 8, 5, 5})}}, {{"w", at::zeros({8, 1, 3, 3})}},
           attrs({{"group", int64_t{8}}}));
  EXPECT_EQ(ok.type(), "float32[1,8,3,3]");
  EXPECT_THROW(OneOp("Conv", {{"x", TensorType::of(at::kFloat, {1, 8, 5, 5})}},
                     {{"w", at::zeros({8, 2, 3, 3})}}, attrs({{"group", int64_t{8}}})),
               Error);
}

TEST(Ops, GemmTransposesAndScales) {
  OneOp op("Gemm", {{"a", TensorType::of(at::kFloat, {2, 3})}},
           {{"b", at::arange(6, at::kFloat).view({2, 3})}, {"c", at::tensor({1.0f})}},
           attrs({{"transB", int64_t{1}}, {"alpha", 2.0f}, {"beta", 3.0f}}));
  EXPECT_EQ(op.type(), "float32[2,2]");
  at::Tensor a = at::ones({2, 3});
  at::Tensor y = exec::run_once(op.g, {a})[0];
  // rows of b sum to 3 and 12: 2*3+3 = 9, 2*12+3 = 27
  EXPECT_TRUE(at::equal(y, at::tensor({9.f, 27.f, 9.f, 27.f}).view({2, 2}))) << y;
}

TEST(Ops, ReshapeCopiesZeroAndInfersMinusOne) {
  OneOp op("Reshape", {{"x", TensorType::of(at::kFloat, {ir::kDynamic, 4, 6})}},
           {{"s", at::tensor({int64_t{0}, int64_t{-1}, int64_t{3}})}}, {});
  EXPECT_EQ(op.type(), "float32[?,8,3]");
  EXPECT_THROW(OneOp("Reshape", {{"x", TensorType::of(at::kFloat, {2, 4, 6})}},
                     {{"s", at::tensor({int64_t{5}, int64_t{-1}, int64_t{7}})}}, {}),
               Error);
}

TEST(Ops, SliceNegativeStepAndClamping) {
  OneOp op("Slice", {{"x", TensorType::of(at::kFloat, {10})}},
           {{"st", at::tensor({int64_t{-2}})}, {"en", at::tensor({std::numeric_limits<int64_t>::min()})},
            {"ax", at::tensor({int64_t{0}})}, {"sp", at::tensor({int64_t{-3}})}},
           {});
  EXPECT_EQ(op.type(), "float32[3]");  // indices 8, 5, 2
  at::Tensor y = exec::run_once(op.g, {at::arange(10, at::kFloat)})[0];
  EXPECT_TRUE(at::equal(y, at::tensor({8.f, 5.f, 2.f})));
}

TEST(Ops, GatherNegativeIndicesAndShape) {
  OneOp op("Gather", {{"x", TensorType::of(at::kFloat, {3, 4})}},
           {{"i", at::tensor({int64_t{-1}, int64_t{0}}).view({1, 2})}}, attrs({{"axis", int64_t{1}}}));
  EXPECT_EQ(op.type(), "float32[3,1,2]");
  at::Tensor y = exec::run_once(op.g, {at::arange(12, at::kFloat).view({3, 4})})[0];
  EXPECT_TRUE(at::equal(y.view({3, 2}), at::tensor({3.f, 0.f, 7.f, 4.f, 11.f, 8.f}).view({3, 2})));
}

TEST(Ops, AveragePoolExcludesPaddingFromCount) {
  OneOp op("AveragePool", {{"x", TensorType::of(at::kFloat, {1, 1, 2, 2})}}, {},
           attrs({{"kernel_shape", std::vector<int64_t>{2, 2}}, {"pads", std::vector<int64_t>{1, 1, 0, 0}}}));
  EXPECT_EQ(op.type(), "float32[1,1,2,2]");
  at::Tensor y = exec::run_once(op.g, {at::tensor({1.f, 2.f, 3.f, 4.f}).view({1, 1, 2, 2})})[0];
  // windows: {1}, {1,2}, {1,3}, {1,2,3,4}
  EXPECT_TRUE(at::allclose(y.view(-1), at::tensor({1.f, 1.5f, 2.f, 2.5f}))) << y;
}

TEST(Ops, BatchNormTrainingUpdatesRunningStatsByOnnxRule) {
  ir::Graph g;
  ir::Value* x = g.add_input("x", TensorType::of(at::kFloat, {2, 1, 1, 2}));
  std::vector<ir::Value*> ins = {x};
  ins.push_back(g.add_initializer("s", at::ones({1}), ir::InitKind::Parameter));
  ins.push_back(g.add_initializer("b", at::zeros({1}), ir::InitKind::Parameter));
  ins.push_back(g.add_initializer("m", at::zeros({1}), ir::InitKind::Buffer));
  ins.push_back(g.add_initializer("v", at::ones({1}), ir::InitKind::Buffer));
  ir::Attributes a;
  a.set("momentum", 0.9f);
  ir::Node* bn = g.add_node("BatchNormalization", ins, {"y"}, a);
  g.add_output(bn->output(0));
  ops::infer_shapes(g);
  exec::Session s(g, {true, {}});
  // batch values 1,2,3,6: mean 3, biased variance (4+1+0+9)/4 = 3.5
  s.run({at::tensor({1.f, 2.f, 3.f, 6.f}).view({2, 1, 1, 2})});
  EXPECT_NEAR(g.initializer("m")->tensor.item<float>(), 0.1f * 3.0f, 1e-5);
  EXPECT_NEAR(g.initializer("v")->tensor.item<float>(), 0.9f + 0.1f * 3.5f, 1e-4);
}

TEST(Ops, LrnMatchesFormula) {
  OneOp op("LRN", {{"x", TensorType::of(at::kFloat, {1, 3, 1, 1})}}, {},
           attrs({{"size", int64_t{3}}, {"alpha", 3.0f}, {"beta", 1.0f}, {"bias", 1.0f}}));
  at::Tensor y = exec::run_once(op.g, {at::tensor({1.f, 2.f, 3.f}).view({1, 3, 1, 1})})[0];
  // channel 0 window {0,1}: 1+4=5 -> 1/(1+5) ; channel 1 {0,1,2}: 14 -> 2/15; channel 2 {1,2}: 13 -> 3/14
  EXPECT_TRUE(at::allclose(y.view(-1), at::tensor({1.f / 6, 2.f / 15, 3.f / 14}))) << y;
}

TEST(Ops, ShapeErrorsNameTheNode) {
  try {
    OneOp("MatMul", {{"a", TensorType::of(at::kFloat, {2, 3})}, {"b", TensorType::of(at::kFloat, {4, 5})}},
          {}, {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("node 'op' (MatMul)"), std::string::npos) << e.what();
  }
}

// Inference convolutions with >= 16 input channels run on a pre-packed oneDNN weight:
// same result as ATen's reference convolution, and a weight changed in place is repacked.
TEST(Ops, PrepackedConvMatchesReferenceAndSeesWeightUpdates) {
  at::manual_seed(5);
  ir::Graph g;
  ir::Value* x = g.add_input("x", TensorType::of(at::kFloat, {2, 32, 9, 9}));
  ir::Value* w = g.add_initializer("W", at::randn({24, 16, 3, 3}), ir::InitKind::Parameter);
  ir::Value* b = g.add_initializer("B", at::randn({24}), ir::InitKind::Parameter);
  ir::Attributes a;
  a.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  a.set("strides", std::vector<int64_t>{2, 2});
  a.set("group", int64_t{2});
  ir::Node* conv = g.add_node("Conv", {x, w, b}, {"y"}, a);
  g.add_output(conv->output(0));
  ops::infer_shapes(g);
  exec::Session s(g);
  at::Tensor in = at::randn({2, 32, 9, 9});
  auto reference = [&] {
    at::Tensor W = g.initializer("W")->tensor.detach(), B = g.initializer("B")->tensor.detach();
    return at::convolution(in, W, B, {2, 2}, {1, 1}, {1, 1}, false, {0, 0}, 2);
  };
  EXPECT_TRUE(at::allclose(s.run({in})[0], reference(), 1e-4, 1e-5));
  {
    at::NoGradGuard no_grad;
    g.initializer("W")->tensor.mul_(-0.5);
  }
  EXPECT_TRUE(at::allclose(s.run({in})[0], reference(), 1e-4, 1e-5));
}
