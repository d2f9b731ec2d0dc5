// Sensitivity analysis: each point is the accuracy of the model with that one layer
// pruned to that sparsity, the same as pruning a copy by hand and evaluating it.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "shrink/core/error.h"
#include "shrink/prune/sensitivity.h"
#include "shrink/prune/unstructured.h"
#include "shrink/train/trainer.h"
#include "shrink/zoo/zoo.h"

using namespace shrink;

TEST(Sensitivity, EachPointIsThatLayerPrunedAloneAndEvaluated) {
  zoo::ModelOptions mo;
  mo.input = {1, 28, 28};
  mo.classes = 10;
  mo.seed = 2;
  ir::Graph g = zoo::build_model("lenet300", mo);
  at::manual_seed(4);
  data::Dataset test;
  test.images = at::randint(0, 256, {300, 1, 28, 28}, at::kLong).to(at::kByte);
  test.labels = at::randint(0, 10, {300}, at::kLong);
  test.classes = 10;

  prune::SensitivityOptions o;
  o.sparsities = {0.0, 0.6, 0.95};
  o.progress = false;
  prune::SensitivityReport r = prune::sensitivity(g, test, o);
  ASSERT_EQ(r.layers.size(), 3u);
  EXPECT_EQ(r.layers[1].node, "fc1");
  EXPECT_EQ(r.layers[1].weights, 30000);
  for (const auto& l : r.layers) EXPECT_DOUBLE_EQ(l.accuracy[0], r.dense_accuracy) << l.node;

  ir::Graph by_hand = g.clone();
  prune::UnstructuredOptions po;
  po.layers = {"fc1"};
  po.amount = 0.95;
  prune::prune_unstructured(by_hand, po);
  EXPECT_DOUBLE_EQ(r.layers[1].accuracy[2], train::evaluate(by_hand, test).accuracy);
  // The original is untouched.
  EXPECT_EQ(prune::alive_mask(g, prune::prunable_weights(g)[1]).sum().item<int64_t>(), 30000);

  o.sparsities = {1.0};
  EXPECT_THROW(prune::sensitivity(g, test, o), Error);
}
