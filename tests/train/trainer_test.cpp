// Training: exact resume, NaN detection, input checks, a real Fashion-MNIST run.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "shrink/core/error.h"
#include "shrink/core/threads.h"
#include "shrink/train/trainer.h"
#include "shrink/zoo/zoo.h"
#include "support/onnx_builder.h"

using namespace shrink;

namespace {

// 512 8x8 images whose label is which quadrant is brightest (learnable, seeded).
data::Dataset quadrants(int64_t n, uint64_t seed) {
  at::manual_seed(seed);
  data::Dataset d;
  d.name = "quadrants";
  d.labels = at::randint(0, 4, {n}, at::kLong);
  at::Tensor img = at::randint(0, 100, {n, 1, 8, 8}, at::kLong);
  for (int64_t i = 0; i < n; ++i) {
    int64_t q = d.labels[i].item<int64_t>();
    img[i].slice(1, (q / 2) * 4, (q / 2) * 4 + 4).slice(2, (q % 2) * 4, (q % 2) * 4 + 4) += 120;
  }
  d.images = img.to(at::kByte);
  d.classes = 4;
  return d;
}

ir::Graph small_model() {
  zoo::ModelOptions o;
  o.input = {1, 8, 8};
  o.classes = 4;
  return zoo::build_model("mlp", o);
}

train::TrainOptions quiet(int epochs) {
  train::TrainOptions o;
  o.epochs = epochs;
  o.batch_size = 64;
  o.lr = 0.05;
  o.progress = false;
  o.keep_best = false;
  return o;
}

}  // namespace

TEST(Trainer, ResumeGivesTheSameWeightsAsAnUninterruptedRun) {
  set_threads(1);  // one thread: reductions in the same order in both runs
  data::Dataset train_set = quadrants(512, 1), test_set = quadrants(128, 2);
  test_support::TempDir dir;

  ir::Graph straight = small_model();
  train::TrainOptions o = quiet(3);
  o.crop_padding = 1;  // augmentation must replay too
  train::TrainResult a = train::train(straight, train_set, test_set, o);

  ir::Graph interrupted = small_model();
  o.checkpoint = dir.file("ckpt.pt");
  o.stop_after_steps = 13;  // mid-epoch 2 (8 batches per epoch)
  train::TrainResult first = train::train(interrupted, train_set, test_set, o);
  EXPECT_TRUE(first.interrupted);
  ir::Graph resumed;
  o.resume = true;
  o.stop_after_steps = -1;
  train::TrainResult b = train::train(resumed, train_set, test_set, o);
  EXPECT_FALSE(b.interrupted);
  ASSERT_EQ(b.history.size(), 3u);
  for (const auto& [name, init] : straight.initializers()) {
    const ir::Initializer* other = resumed.initializer(name);
    ASSERT_NE(other, nullptr) << name;
    EXPECT_TRUE(at::allclose(init.tensor, other->tensor, 0, 1e-6)) << name;
  }
  EXPECT_NEAR(a.history.back().test_accuracy, b.history.back().test_accuracy, 1e-9);
  EXPECT_GT(a.history.back().test_accuracy, 0.9);  // the task is learnable
  set_threads(0);
}

TEST(Trainer, NanLossStopsNamingTheStep) {
  data::Dataset d = quadrants(256, 3);
  ir::Graph g = small_model();
  train::TrainOptions o = quiet(1);
  o.lr = 1e30;
  try {
    train::train(g, d, d, o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("training diverged at step "), std::string::npos) << e.what();
  }
}

TEST(Trainer, ModelInputMustFitTheData) {
  data::Dataset d = quadrants(64, 4);
  zoo::ModelOptions mo;
  mo.input = {3, 32, 32};
  ir::Graph g = zoo::build_model("lenet5", mo);
  try {
    train::train(g, d, d, quiet(1));
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "model input 'input' is float32[N,3,32,32] but 'quadrants' has 1x8x8 images");
  }
}

TEST(Trainer, LearnsFashionMnistAndEvaluateAgreesWithTraining) {
  data::Dataset train_set = data::load_idx_dir(data::default_data_dir(), true);
  data::Dataset test_set = data::load_idx_dir(data::default_data_dir(), false);
  train_set.images = train_set.images.slice(0, 0, 12000);
  train_set.labels = train_set.labels.slice(0, 0, 12000);
  zoo::ModelOptions mo;
  ir::Graph g = zoo::build_model("mlp", mo);
  train::TrainOptions o = quiet(1);
  o.lr = 0.1;
  train::TrainResult r = train::train(g, train_set, test_set, o);
  EXPECT_GT(r.history[0].test_accuracy, 0.78);
  train::EvalResult e = train::evaluate(g, test_set);
  EXPECT_DOUBLE_EQ(e.accuracy, r.history[0].test_accuracy);
  int64_t total = 0;
  for (const auto& row : e.confusion)
    for (int64_t v : row) total += v;
  EXPECT_EQ(total, 10000);
  EXPECT_EQ(g.metadata.count("shrink.input_mean"), 1u);
}

// Keep-best restores the best epoch's weights and BatchNorm statistics together:
// evaluating the result gives exactly the best epoch's test accuracy. The check needs a
// run whose best epoch is not the last; seeds are tried in order until one is.
TEST(Trainer, KeepBestRestoresWeightsAndBatchNormStatistics) {
  data::Dataset train_set = quadrants(256, 5), test_set = quadrants(256, 6);
  bool checked = false;
  for (uint64_t seed = 0; seed < 8 && !checked; ++seed) {
    zoo::ModelOptions mo;
    mo.input = {1, 8, 8};
    mo.classes = 4;
    mo.width = 0.25;
    mo.seed = seed;
    ir::Graph g = zoo::build_model("resnet20", mo);
    train::TrainOptions o = quiet(5);
    o.keep_best = true;
    o.seed = seed;
    o.lr = 0.5;  // noisy on purpose
    o.schedule.kind = "constant";
    train::TrainResult r = train::train(g, train_set, test_set, o);
    if (r.best_epoch == o.epochs) continue;
    EXPECT_DOUBLE_EQ(train::evaluate(g, test_set).accuracy, r.best_accuracy) << "seed " << seed;
    checked = true;
  }
  EXPECT_TRUE(checked) << "no seed gave a best epoch before the last";
}
