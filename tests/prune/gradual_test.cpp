// Gradual (AGP) pruning and sparsity regularisation in training.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "shrink/core/error.h"
#include "shrink/prune/gradual.h"
#include "shrink/train/trainer.h"
#include "shrink/zoo/zoo.h"

using namespace shrink;

namespace {

data::Dataset random_set(int64_t n, uint64_t seed) {
  at::manual_seed(seed);
  data::Dataset d;
  d.name = "random";
  d.images = at::randint(0, 256, {n, 1, 8, 8}, at::kLong).to(at::kByte);
  d.labels = at::randint(0, 4, {n}, at::kLong);
  d.classes = 4;
  return d;
}

ir::Graph model(const char* name) {
  zoo::ModelOptions o;
  o.input = {1, 8, 8};
  o.classes = 4;
  o.seed = 1;
  return zoo::build_model(name, o);
}

train::TrainOptions plain_sgd() {
  train::TrainOptions o;
  o.epochs = 1;
  o.batch_size = 32;
  o.lr = 0.1;
  o.momentum = 0;
  o.weight_decay = 0;
  o.schedule.kind = "constant";
  o.progress = false;
  return o;
}

}  // namespace

TEST(Agp, CubicScheduleOfZhuAndGupta) {
  EXPECT_DOUBLE_EQ(prune::agp_sparsity(0.0, 0.9, 2, 6, 1), 0.0);
  EXPECT_DOUBLE_EQ(prune::agp_sparsity(0.0, 0.9, 2, 6, 2), 0.0);
  EXPECT_DOUBLE_EQ(prune::agp_sparsity(0.0, 0.9, 2, 6, 4), 0.9 - 0.9 * 0.125);  // halfway: (1/2)^3
  EXPECT_DOUBLE_EQ(prune::agp_sparsity(0.1, 0.9, 0, 4, 1), 0.9 - 0.8 * 27.0 / 64);
  EXPECT_DOUBLE_EQ(prune::agp_sparsity(0.0, 0.9, 2, 6, 9), 0.9);
}

TEST(Agp, MasksGrowDuringTrainingToTheFinalSparsity) {
  ir::Graph g = model("lenet300");
  data::Dataset train_set = random_set(512, 3), test_set = random_set(64, 4);
  prune::UnstructuredOptions po;
  po.amount = 0.8;
  prune::GradualPruner gp(g, po, 0.0, 1.5, 2);  // 16 steps per epoch: done in epoch 2
  EXPECT_EQ(gp.sparsity(), 0.0);
  std::vector<double> seen;
  train::TrainOptions o = plain_sgd();
  o.epochs = 2;
  o.keep_best = false;
  o.after_step = [&](int64_t step, double epoch) {
    gp.after_step(step, epoch);
    seen.push_back(gp.sparsity());
  };
  train::train(g, train_set, test_set, o);
  ASSERT_EQ(seen.size(), 32u);
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_GE(seen[i], seen[i - 1]) << "step " << i;
  EXPECT_NEAR(seen[3], prune::agp_sparsity(0, 0.8, 0, 1.5, 4.0 / 16), 0.01);  // updated on step 4
  EXPECT_NEAR(seen.back(), 0.8, 1e-4);
  EXPECT_NEAR(seen[24], 0.8, 1e-4);  // reached at epoch 1.5 and kept
  // Pruned weights stayed pruned through training: the forward reads w * mask.
  for (const auto& w : prune::prunable_weights(g))
    EXPECT_LT(prune::alive_mask(g, w).sum().item<int64_t>(), prune::alive_mask(g, w).numel());
  EXPECT_THROW(prune::GradualPruner(g, po, 2.0, 1.0, 1), Error);
}

TEST(SparsityRegularisation, AddsLambdaSignAndLambdaWToTheGradient) {
  data::Dataset train_set = random_set(32, 5), test_set = random_set(32, 6);
  auto one_step = [&](double l1, double l2, double bn_l1, const char* name) {
    ir::Graph g = model(name);
    train::TrainOptions o = plain_sgd();
    o.l1 = l1, o.l2 = l2, o.bn_l1 = bn_l1;
    o.stop_after_steps = 1;
    o.shards = 1;
    std::map<std::string, at::Tensor> before;
    for (const auto& [n, init] : g.initializers()) before[n] = init.tensor.detach().clone();
    train::train(g, train_set, test_set, o);
    std::map<std::string, std::pair<at::Tensor, at::Tensor>> out;  // name -> (before, after)
    for (const auto& [n, init] : g.initializers()) out[n] = {before[n], init.tensor.detach().clone()};
    return out;
  };
  // SGD without momentum: w' = w - lr * (grad + l1 * sign(w) + l2 * w).
  auto plain = one_step(0, 0, 0, "lenet300");
  auto reg = one_step(1e-2, 1e-1, 0, "lenet300");
  for (const char* w : {"fc.weight", "fc1.weight", "fc2.weight"}) {
    auto [w0, w1] = plain.at(w);
    at::Tensor expected = w1 - 0.1 * (1e-2 * w0.sign() + 1e-1 * w0);
    EXPECT_TRUE(at::allclose(reg.at(w).second, expected, 1e-5, 1e-7)) << w;
  }
  EXPECT_TRUE(at::allclose(reg.at("fc.bias").second, plain.at("fc.bias").second));  // biases are not regularised

  // Network slimming: L1 on BatchNorm scales only.
  auto bn_plain = one_step(0, 0, 0, "resnet20");
  auto bn_reg = one_step(0, 0, 0.5, "resnet20");
  int scales = 0;
  for (const auto& [n, pr] : bn_plain) {
    bool is_scale = n.size() > 6 && n.substr(n.size() - 6) == "weight" && pr.first.dim() == 1 &&
                    n.find("bn") != std::string::npos;
    if (!is_scale) continue;
    ++scales;
    at::Tensor expected = pr.second - 0.1 * 0.5 * pr.first.sign();
    EXPECT_TRUE(at::allclose(bn_reg.at(n).second, expected, 1e-5, 1e-6)) << n;
  }
  EXPECT_GT(scales, 0);
}
