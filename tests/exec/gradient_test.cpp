// Autograd through the executor against central finite differences (float64).
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <gtest/gtest.h>

#include "shrink/exec/session.h"
#include "shrink/ops/shape_inference.h"

using namespace shrink;
using ir::TensorType;

namespace {

// Compares d(sum(out * R))/d(t) from autograd with (f(t+e) - f(t-e)) / 2e for
// up to `samples` elements of every parameter and of the input.
void check_gradients(ir::Graph& g, at::Tensor x, int samples = 24) {
  at::manual_seed(7);
  exec::Session session(g, {true, {}});
  x = x.detach().requires_grad_(true);
  at::Tensor out = session.run({x})[0];
  at::Tensor r = at::randn_like(out);
  (out * r).sum().backward();

  std::vector<std::pair<std::string, at::Tensor>> targets = {{"input", x}};
  for (const auto& [name, init] : g.initializers())
    if (init.kind == ir::InitKind::Parameter) targets.emplace_back(name, init.tensor);
  auto loss = [&] {
    at::NoGradGuard no_grad;
    return (session.run({x.detach()})[0] * r).sum().item<double>();
  };
  const double eps = 1e-6;
  for (auto& [name, t] : targets) {
    ASSERT_TRUE(t.grad().defined()) << name << " got no gradient";
    at::Tensor flat = t.detach().view(-1);
    at::Tensor grad = t.grad().view(-1);
    int64_t n = flat.numel();
    for (int64_t k = 0; k < std::min<int64_t>(n, samples); ++k) {
      int64_t i = (k * 7919) % n;
      double saved = flat[i].item<double>();
      flat[i].fill_(saved + eps);
      double up = loss();
      flat[i].fill_(saved - eps);
      double down = loss();
      flat[i].fill_(saved);
      double numeric = (up - down) / (2 * eps);
      double analytic = grad[i].item<double>();
      EXPECT_NEAR(analytic, numeric, 1e-6 + 1e-5 * std::abs(numeric)) << name << "[" << i << "]";
    }
  }
}

ir::Value* param(ir::Graph& g, const std::string& name, std::vector<int64_t> shape) {
  return g.add_initializer(name, at::randn(shape, at::kDouble), ir::InitKind::Parameter);
}

// BatchNormalization over `channels` with trained scale/bias and fresh statistics.
ir::Node* batch_norm(ir::Graph& g, ir::Value* x, int64_t channels, const std::string& name) {
  ir::Value* mean = g.add_initializer(name + ".mean", at::zeros({channels}, at::kDouble), ir::InitKind::Buffer);
  ir::Value* var = g.add_initializer(name + ".var", at::ones({channels}, at::kDouble), ir::InitKind::Buffer);
  return g.add_node("BatchNormalization",
                    {x, param(g, name + ".s", {channels}), param(g, name + ".b", {channels}), mean, var}, {name});
}

}  // namespace

TEST(Gradient, Conv) {
  at::manual_seed(1);
  ir::Graph g;
  ir::Value* x = g.add_input("x", TensorType::of(at::kDouble, {2, 2, 5, 5}));
  ir::Attributes a;
  a.set("pads", std::vector<int64_t>{1, 0, 0, 1});
  a.set("strides", std::vector<int64_t>{2, 1});
  ir::Node* conv = g.add_node("Conv", {x, param(g, "W", {3, 2, 3, 3}), param(g, "B", {3})}, {"y"}, a);
  g.add_output(conv->output(0));
  ops::infer_shapes(g);
  check_gradients(g, at::randn({2, 2, 5, 5}, at::kDouble));
}

TEST(Gradient, Gemm) {
  at::manual_seed(2);
  ir::Graph g;
  ir::Value* x = g.add_input("x", TensorType::of(at::kDouble, {4, 3}));
  ir::Attributes a;
  a.set("transB", int64_t{1});
  a.set("alpha", 0.5f);
  a.set("beta", 2.0f);
  ir::Node* gemm = g.add_node("Gemm", {x, param(g, "W", {5, 3}), param(g, "C", {5})}, {"y"}, a);
  g.add_output(gemm->output(0));
  ops::infer_shapes(g);
  check_gradients(g, at::randn({4, 3}, at::kDouble));
}

TEST(Gradient, BatchNormalizationTraining) {
  at::manual_seed(3);
  ir::Graph g;
  ir::Value* x = g.add_input("x", TensorType::of(at::kDouble, {4, 3, 2, 2}));
  ir::Node* bn = batch_norm(g, x, 3, "y");
  g.add_output(bn->output(0));
  ops::infer_shapes(g);
  check_gradients(g, at::randn({4, 3, 2, 2}, at::kDouble));
}

TEST(Gradient, SmallNetwork) {
  at::manual_seed(4);
  ir::Graph g;
  ir::Value* x = g.add_input("x", TensorType::of(at::kDouble, {3, 1, 6, 6}));
  ir::Attributes pads;
  pads.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  ir::Node* conv = g.add_node("Conv", {x, param(g, "c.W", {4, 1, 3, 3}), param(g, "c.B", {4})}, {"c"}, pads);
  ir::Node* bn = batch_norm(g, conv->output(0), 4, "bn");
  ir::Node* act = g.add_node("Tanh", {bn->output(0)}, {"act"});
  ir::Attributes pool;
  pool.set("kernel_shape", std::vector<int64_t>{2, 2});
  pool.set("strides", std::vector<int64_t>{2, 2});
  ir::Node* ap = g.add_node("AveragePool", {act->output(0)}, {"pool"}, pool);
  ir::Node* flat = g.add_node("Flatten", {ap->output(0)}, {"flat"});
  ir::Attributes tb;
  tb.set("transB", int64_t{1});
  ir::Node* fc = g.add_node("Gemm", {flat->output(0), param(g, "fc.W", {5, 36}), param(g, "fc.B", {5})}, {"logits"}, tb);
  ir::Node* sm = g.add_node("LogSoftmax", {fc->output(0)}, {"y"});
  g.add_output(sm->output(0));
  ops::infer_shapes(g);
  check_gradients(g, at::randn({3, 1, 6, 6}, at::kDouble));
}
