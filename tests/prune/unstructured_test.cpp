// Unstructured pruning: masks against torch.nn.utils.prune on the same weights,
// hand-checked iterative and global rules, soft masks in training and through ONNX.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>

#include "shrink/core/error.h"
#include "shrink/exec/session.h"
#include "shrink/io/npy.h"
#include "shrink/onnx/export.h"
#include "shrink/onnx/import.h"
#include "shrink/prune/unstructured.h"
#include "shrink/zoo/zoo.h"
#include "support/onnx_builder.h"
#include "support/paths.h"
#include "support/process.h"

using namespace shrink;

namespace {

ir::Graph lenet300() {
  zoo::ModelOptions o;
  o.input = {1, 28, 28};
  o.classes = 10;
  o.seed = 7;
  return zoo::build_model("lenet300", o);
}

std::map<std::string, at::Tensor> masks_of(const ir::Graph& g) {
  std::map<std::string, at::Tensor> m;
  for (const auto& w : prune::prunable_weights(g)) m[w.node->name] = prune::alive_mask(g, w);
  return m;
}

int64_t alive(const ir::Graph& g) {
  int64_t n = 0;
  for (auto& [name, m] : masks_of(g)) n += m.sum().item<int64_t>();
  return n;
}

}  // namespace

TEST(UnstructuredPruning, MasksMatchTorchNnUtilsPrune) {
  // The same weights pruned by PyTorch: l1_unstructured 0.3 then 0.5 on fc (iterative,
  // PruningContainer), and global_unstructured 0.6 over fc1 and fc2.
  ir::Graph g = lenet300();
  test_support::TempDir dir;
  std::vector<prune::PrunableWeight> ws = prune::prunable_weights(g);
  ASSERT_EQ(ws.size(), 3u);
  for (const auto& w : ws) io::write_npy(dir.file(w.node->name + ".npy"), g.initializer(w.weight)->tensor.detach());
  std::ofstream(dir.file("ref.py")) << R"(
import sys, numpy as np, torch
from torch.nn.utils import prune
d = sys.argv[1]
lin = {}
for name in ["fc", "fc1", "fc2"]:
    w = torch.from_numpy(np.load(f"{d}/{name}.npy"))
    lin[name] = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
    lin[name].weight.data = w.clone()
prune.l1_unstructured(lin["fc"], "weight", amount=0.3)
prune.l1_unstructured(lin["fc"], "weight", amount=0.5)
prune.global_unstructured([(lin["fc1"], "weight"), (lin["fc2"], "weight")], prune.L1Unstructured, amount=0.6)
for name in ["fc", "fc1", "fc2"]:
    np.save(f"{d}/{name}_mask.npy", lin[name].weight_mask.numpy().astype(np.float32))
)";
  auto r = test_support::run_command(test_support::python() + " " + dir.file("ref.py") + " " + dir.path);
  ASSERT_EQ(r.status, 0) << r.output;

  prune::UnstructuredOptions o;
  o.layers = {"fc"};
  o.amount = 0.3;
  prune::prune_unstructured(g, o);
  o.amount = 0.5;
  prune::prune_unstructured(g, o);
  o.layers = {"fc1", "fc2"};
  o.method = "global";
  o.amount = 0.6;
  o.min_keep = 1e-6;  // PyTorch has no floor; here it does not bind
  prune::prune_unstructured(g, o);
  auto masks = masks_of(g);
  for (const char* name : {"fc", "fc1", "fc2"}) {
    at::Tensor ref = io::read_npy(dir.file(std::string(name) + "_mask.npy")).to(at::kBool);
    EXPECT_TRUE(at::equal(masks[name], ref)) << name << ": " << masks[name].ne(ref).sum().item<int64_t>()
                                             << " mask elements differ from PyTorch";
  }
  // 0.3 then 0.5 of the rest: 35% of fc's 235200 weights alive (PyTorch rounds each step).
  EXPECT_EQ(masks["fc"].sum().item<int64_t>(), 235200 - 70560 - 82320);
}

TEST(UnstructuredPruning, HandComputedL1AndRandomAndFloor) {
  ir::Graph g;
  ir::Value* x = g.add_input("x", ir::TensorType::of(at::kFloat, {1, 4}));
  at::Tensor w = at::tensor({0.5f, -4.0f, 0.1f, 3.0f, -0.2f, 2.0f, -1.0f, 0.3f}).view({2, 4});  // [2,4] for MatMul [4,2]
  ir::Value* wv = g.add_initializer("w", w.t().contiguous().requires_grad_(true), ir::InitKind::Parameter);
  ir::Node* mm = g.add_node("MatMul", {x, wv}, {"y"}, {}, "mm");
  mm->output(0)->type = ir::TensorType::of(at::kFloat, {1, 2});
  g.add_output(mm->output(0));

  prune::UnstructuredOptions o;
  o.amount = 0.375;  // 3 of 8: |0.1|, |-0.2|, |0.3|
  auto report = prune::prune_unstructured(g, o);
  EXPECT_EQ(report[0].alive_before, 8);
  EXPECT_EQ(report[0].alive_after, 5);
  at::Tensor expected = at::tensor({0.5f, -4.0f, 0.0f, 3.0f, 0.0f, 2.0f, -1.0f, 0.0f}).view({2, 4}).t();
  EXPECT_TRUE(at::equal(g.initializer("w")->tensor.detach(), expected));

  // Again: 0.5 of the 5 alive is 2.5, which rounds half to even like PyTorch: 2 go, 0.5 and -1.
  o.amount = 0.5;
  prune::prune_unstructured(g, o);
  expected = at::tensor({0.0f, -4.0f, 0.0f, 3.0f, 0.0f, 2.0f, 0.0f, 0.0f}).view({2, 4}).t();
  EXPECT_TRUE(at::equal(g.initializer("w")->tensor.detach(), expected));

  // Three alive: 0.9 of them would leave none.
  o.amount = 0.9;
  EXPECT_THROW(prune::prune_unstructured(g, o), Error);
  o.amount = 1.0;
  EXPECT_THROW(prune::prune_unstructured(g, o), Error);
  o.amount = 0.5;
  o.layers = {"nope"};
  try {
    prune::prune_unstructured(g, o);
    FAIL() << "unknown layer accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'nope' is not a prunable layer"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("mm"), std::string::npos) << e.what();
  }
}

TEST(UnstructuredPruning, GlobalKeepsEveryLayerAboveItsFloorAndRandomIsSeeded) {
  ir::Graph g = lenet300();
  {  // shrink fc2 so a global ranking would take all of it
    at::NoGradGuard ng;
    g.initializer(prune::prunable_weights(g)[2].weight)->tensor.mul_(1e-6);
  }
  prune::UnstructuredOptions o;
  o.method = "global";
  o.amount = 0.5;
  o.min_keep = 0.05;
  auto report = prune::prune_unstructured(g, o);
  EXPECT_EQ(report[2].alive_after, 50);  // 5% of 1000
  int64_t before = 0, after = 0;
  for (auto& r : report) before += r.alive_before, after += r.alive_after;
  EXPECT_EQ(before - after, std::llround(0.5 * before));

  ir::Graph a = lenet300(), b = lenet300();
  prune::UnstructuredOptions ro;
  ro.method = "random";
  ro.amount = 0.4;
  prune::prune_unstructured(a, ro);
  prune::prune_unstructured(b, ro);
  auto ma = masks_of(a), mb = masks_of(b);
  for (auto& [name, m] : ma) EXPECT_TRUE(at::equal(m, mb[name])) << name;
  EXPECT_EQ(ma["fc"].sum().item<int64_t>(), 235200 - 94080);
}

TEST(UnstructuredPruning, SoftMasksBlockGradientsSurviveOnnxAndBecomePermanent) {
  ir::Graph g = lenet300();
  prune::UnstructuredOptions o;
  o.amount = 0.8;
  o.soft = true;
  prune::prune_unstructured(g, o);
  auto ws = prune::prunable_weights(g);
  ASSERT_EQ(ws.size(), 3u);
  for (const auto& w : ws) {
    EXPECT_EQ(w.mask, w.weight + "_mask");
    EXPECT_EQ(g.initializer(w.mask)->kind, ir::InitKind::Buffer);
    EXPECT_GT(g.initializer(w.weight)->tensor.ne(0).sum().item<int64_t>(), prune::alive_mask(g, w).sum().item<int64_t>())
        << "soft pruning must keep the original weights";
  }

  // Forward and gradient: masked weights contribute nothing and get zero gradient.
  at::manual_seed(1);
  at::Tensor x = at::randn({8, 1, 28, 28});
  exec::Session s(g, {true, {}});
  at::Tensor y = s.run({x})[0];
  y.sum().backward();
  for (const auto& w : ws) {
    at::Tensor grad = g.initializer(w.weight)->tensor.grad();
    EXPECT_EQ(grad.masked_select(prune::alive_mask(g, w).logical_not()).abs().max().item<float>(), 0.0f) << w.weight;
  }

  // Through ONNX: the Mul and the mask come back as a soft mask over a trainable weight.
  ir::Graph back = onnx_io::import_model_bytes(onnx_io::export_model_bytes(g), "soft.onnx");
  auto wb = prune::prunable_weights(back);
  ASSERT_EQ(wb.size(), 3u);
  for (size_t i = 0; i < wb.size(); ++i) {
    EXPECT_EQ(wb[i].mask, ws[i].mask);
    EXPECT_EQ(back.initializer(wb[i].weight)->kind, ir::InitKind::Parameter);
    EXPECT_EQ(back.initializer(wb[i].mask)->kind, ir::InitKind::Buffer);
  }
  at::Tensor ref = exec::run_once(g, {x})[0];
  EXPECT_TRUE(at::allclose(exec::run_once(back, {x})[0], ref, 1e-5, 1e-6));

  // prune.remove: the zeros go into the weights, the Mul and mask go away, outputs unchanged.
  EXPECT_EQ(prune::make_permanent(back), 3);
  for (const auto& node : back.nodes()) EXPECT_NE(node->op_type, "Mul");
  EXPECT_EQ(alive(back), alive(g));
  EXPECT_TRUE(at::allclose(exec::run_once(back, {x})[0], ref, 1e-5, 1e-6));
}

TEST(UnstructuredPruning, AmountPerRoundCompoundsToTheTotal) {
  double a = prune::amount_per_round(0.9, 3);
  EXPECT_NEAR(1 - std::pow(1 - a, 3), 0.9, 1e-12);
  EXPECT_DOUBLE_EQ(prune::amount_per_round(0.5, 1), 0.5);
  EXPECT_THROW(prune::amount_per_round(0.5, 0), Error);
}
