// Executor: taps, train/eval modes, input validation, kernel errors.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "shrink/core/error.h"
#include "shrink/exec/session.h"
#include "shrink/ops/shape_inference.h"

using namespace shrink;
using ir::TensorType;

namespace {

// x -> Gemm(W) -> h -> Relu -> y
ir::Graph mlp() {
  ir::Graph g;
  ir::Value* x = g.add_input("x", TensorType::of(at::kFloat, {ir::kDynamic, 2}));
  ir::Value* w = g.add_initializer("W", at::tensor({1.f, -1.f, 2.f, 0.5f}).view({2, 2}), ir::InitKind::Parameter);
  ir::Attributes a;
  a.set("transB", int64_t{1});
  ir::Node* fc = g.add_node("Gemm", {x, w}, {"h"}, a, "fc");
  ir::Node* relu = g.add_node("Relu", {fc->output(0)}, {"y"}, {}, "relu");
  g.add_output(relu->output(0));
  ops::infer_shapes(g);
  return g;
}

}  // namespace

TEST(Session, TapReturnsIntermediateValue) {
  ir::Graph g = mlp();
  exec::Session s(g, {false, {"h"}});
  at::Tensor y = s.run({at::tensor({1.f, 2.f}).view({1, 2})})[0];
  // h = [1-2, 2+1] = [-1, 3]
  EXPECT_TRUE(at::equal(s.tap("h"), at::tensor({-1.f, 3.f}).view({1, 2})));
  EXPECT_TRUE(at::equal(y, at::tensor({0.f, 3.f}).view({1, 2})));
  EXPECT_THROW(exec::Session(g, {false, {"nope"}}), Error);
}

TEST(Session, TrainModeGivesParameterGradientsEvalModeDoesNot) {
  ir::Graph g = mlp();
  at::Tensor x = at::tensor({1.f, 2.f}).view({1, 2});
  exec::Session eval(g);
  EXPECT_FALSE(eval.run({x})[0].requires_grad());
  exec::Session train(g, {true, {}});
  at::Tensor y = train.run({x})[0];
  y.sum().backward();
  // d(sum relu(Wx))/dW: row 0 inactive (h=-1), row 1 active -> x
  at::Tensor grad = g.initializer("W")->tensor.grad();
  EXPECT_TRUE(at::equal(grad, at::tensor({0.f, 0.f, 1.f, 2.f}).view({2, 2}))) << grad;
}

TEST(Session, WrongInputShapeNamesInputAndExpectedShape) {
  ir::Graph g = mlp();
  exec::Session s(g);
  try {
    s.run({at::zeros({4, 3})});
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "input 'x': expected shape float32[?,2], got float32[4,3]");
  }
  EXPECT_THROW(s.run({at::zeros({4, 2}, at::kDouble)}), Error);
  EXPECT_THROW(s.run({}), Error);
  // the symbolic batch takes any size
  EXPECT_EQ(s.run({at::zeros({7, 2})})[0].size(0), 7);
}

TEST(Session, KernelFailureNamesTheNode) {
  ir::Graph g;
  ir::Value* x = g.add_input("x", TensorType::unknown(at::kFloat));
  ir::Value* s = g.add_initializer("shape", at::tensor({int64_t{5}}), ir::InitKind::Constant);
  ir::Node* r = g.add_node("Reshape", {x, s}, {"y"}, {}, "bad_reshape");
  g.add_output(r->output(0));
  ops::infer_shapes(g);
  exec::Session session(g);
  try {
    session.run({at::zeros({2, 3})});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("node 'bad_reshape' (Reshape): ", 0), 0u) << e.what();
  }
}

TEST(Session, ReleasesIntermediatesButKeepsOutputs) {
  ir::Graph g = mlp();
  exec::Session s(g);
  at::Tensor x = at::ones({3, 2});
  at::Tensor y1 = s.run({x})[0];
  at::Tensor y2 = s.run({x * 2})[0];
  EXPECT_TRUE(at::equal(y2, y1 * 2));
}
