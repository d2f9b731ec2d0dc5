// Sharded training step: the gradient of a batch split across threads equals the
// whole-batch gradient computed by plain autograd, and repeats exactly.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "shrink/exec/session.h"
#include "shrink/train/step.h"
#include "shrink/zoo/zoo.h"

using namespace shrink;

namespace {

ir::Graph lenet5() {
  at::manual_seed(3);
  zoo::ModelOptions o;
  o.input = {1, 28, 28};
  o.classes = 10;
  return zoo::build_model("lenet5", o);
}

std::vector<at::Tensor> params_of(const ir::Graph& g) {
  std::vector<at::Tensor> p;
  for (const auto& [name, init] : g.initializers())
    if (init.kind == ir::InitKind::Parameter) p.push_back(init.tensor);
  return p;
}

const train::LossFn kCrossEntropy = [](const std::vector<at::Tensor>& outputs, const at::Tensor& labels, int64_t) {
  const at::Tensor& logits = outputs[0];
  return at::cross_entropy_loss(logits, labels);
};

}  // namespace

TEST(TrainStep, ShardedGradientEqualsWholeBatchGradient) {
  ir::Graph g = lenet5();
  std::vector<at::Tensor> params = params_of(g);
  at::manual_seed(5);
  at::Tensor x = at::randn({37, 1, 28, 28});  // odd size: shards of 12, 12 and 13
  at::Tensor y = at::randint(0, 10, {37}, at::kLong);

  // Reference: the whole batch through one session, autograd's backward.
  exec::Session whole(g, {true, {}});
  at::Tensor ref_loss = at::cross_entropy_loss(whole.run({x})[0], y);
  ref_loss.backward();
  std::vector<at::Tensor> ref;
  for (auto& p : params) {
    ref.push_back(p.grad().clone());
    p.mutable_grad() = at::Tensor();
  }

  train::TrainStep step(g, params, 3);
  ASSERT_EQ(step.shards(), 3);
  train::TrainStep::Result r = step.run(x, y, kCrossEntropy);
  EXPECT_NEAR(r.loss, ref_loss.item<double>(), 1e-5);
  EXPECT_EQ(r.logits.size(0), 37);
  std::vector<at::Tensor> first;
  for (size_t i = 0; i < params.size(); ++i) {
    ASSERT_TRUE(params[i].grad().defined());
    EXPECT_TRUE(at::allclose(params[i].grad(), ref[i], 1e-4, 1e-6)) << "parameter " << i;
    first.push_back(params[i].grad().clone());
  }
  step.run(x, y, kCrossEntropy);  // the same batch again: bit-identical gradients
  for (size_t i = 0; i < params.size(); ++i) EXPECT_TRUE(at::equal(params[i].grad(), first[i])) << "parameter " << i;
}

TEST(TrainStep, AutoShardsOnlyForSmallConvNetsWithoutBatchCoupling) {
  zoo::ModelOptions o;
  o.input = {1, 28, 28};
  o.classes = 10;
  EXPECT_EQ(train::auto_shards(zoo::build_model("lenet5", o), 2, 128), 2);
  EXPECT_EQ(train::auto_shards(zoo::build_model("lenet5", o), 1, 128), 1);
  EXPECT_EQ(train::auto_shards(zoo::build_model("lenet5", o), 2, 16), 1);     // shards would be too small
  EXPECT_EQ(train::auto_shards(zoo::build_model("mlp", o), 2, 128), 1);       // GEMMs split well already
  EXPECT_EQ(train::auto_shards(zoo::build_model("resnet20", o), 2, 128), 1);  // BatchNorm couples the batch
}

TEST(Step, SmallDenseNetworksLeaveACoreToTheLoader) {
  zoo::ModelOptions o;
  o.input = {1, 28, 28};
  o.classes = 10;
  EXPECT_EQ(train::auto_compute_threads(zoo::build_model("mlp", o), 2), 1);       // 0.1 M MACs, GEMMs only
  EXPECT_EQ(train::auto_compute_threads(zoo::build_model("lenet300", o), 16), 15);
  EXPECT_EQ(train::auto_compute_threads(zoo::build_model("mlp", o), 1), 1);
  EXPECT_EQ(train::auto_compute_threads(zoo::build_model("lenet5", o), 2), 2);    // convolutions
  o.width = 16;
  EXPECT_EQ(train::auto_compute_threads(zoo::build_model("mlp", o), 2), 2);       // 1.6 M MACs: large enough to split
}
