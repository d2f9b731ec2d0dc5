// Distillation: the loss terms against PyTorch on the same tensors (/usr/bin/python3), the
// checks that run before any training, hint adapters trained then dropped, the teacher
// cache written once and read back, multi-teacher soft targets, and mutual learning.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "shrink/core/error.h"
#include "shrink/distill/distill.h"
#include "shrink/distill/losses.h"
#include "shrink/exec/session.h"
#include "shrink/data/loader.h"
#include "shrink/io/npy.h"
#include "shrink/zoo/zoo.h"
#include "support/onnx_builder.h"
#include "support/errors.h"
#include "support/paths.h"
#include "support/process.h"

using namespace shrink;
using test_support::error_of;

namespace {

// A small random dataset in Fashion-MNIST's shape: 96 train and 32 test images, 10 classes.
data::Dataset tiny(int64_t n, uint64_t seed) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  data::Dataset d;
  d.name = "tiny";
  d.classes = 10;
  d.images = at::randint(0, 256, {n, 1, 28, 28}, gen, at::kLong).to(at::kByte);
  d.labels = at::randint(0, 10, {n}, gen, at::kLong);
  return d;
}

ir::Graph model(const std::string& name, uint64_t seed) {
  zoo::ModelOptions o;
  o.input = {1, 28, 28};
  o.classes = 10;
  o.seed = seed;
  return zoo::build_model(name, o);
}

distill::DistillOptions quick() {
  distill::DistillOptions o;
  o.train.epochs = 1;
  o.train.batch_size = 32;
  o.train.progress = false;
  return o;
}

}  // namespace

TEST(DistillLosses, MatchPyTorch) {
  test_support::TempDir dir;
  at::manual_seed(1);
  at::Tensor s = at::randn({8, 10}) * 3, t1 = at::randn({8, 10}) * 3, t2 = at::randn({8, 10}) * 3;
  at::Tensor y = at::randint(0, 10, {8}, at::kLong);
  at::Tensor fs = at::randn({8, 6, 5, 5}), ft = at::randn({8, 12, 10, 10});
  at::Tensor es = at::randn({8, 16}), et = at::randn({8, 32});
  for (auto& [name, t] : std::vector<std::pair<std::string, at::Tensor>>{
           {"s", s}, {"t1", t1}, {"t2", t2}, {"y", y}, {"fs", fs}, {"ft", ft}, {"es", es}, {"et", et}})
    io::write_npy(dir.file(name + ".npy"), t);
  std::ofstream(dir.file("ref.py")) << R"(import sys, numpy as np, torch, torch.nn.functional as F
d = sys.argv[1]
L = lambda n: torch.from_numpy(np.load(f"{d}/{n}.npy"))
s, t1, t2, y, fs, ft, es, et = [L(n) for n in ["s", "t1", "t2", "y", "fs", "ft", "es", "et"]]
T, alpha = 4.0, 0.7
p = 0.25 * F.softmax(t1 / T, 1) + 0.75 * F.softmax(t2 / T, 1)
kd = alpha * T * T * F.kl_div(F.log_softmax(s / T, 1), p, reduction="batchmean") + (1 - alpha) * F.cross_entropy(s, y)
def at(x, size):
    a = x.pow(2).mean(1, keepdim=True)
    a = F.interpolate(a, size=size, mode="bilinear", align_corners=False)
    return F.normalize(a.view(x.size(0), -1))
att = (at(fs, ft.shape[2:]) - at(ft, ft.shape[2:])).pow(2).mean()
def pdist(e):
    sq = e.pow(2).sum(1)
    r = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2 * e @ e.t()).clamp(min=1e-12).sqrt().clone()
    r[range(len(e)), range(len(e))] = 0
    return r
td = pdist(et); td = td / td[td > 0].mean()
sd = pdist(es); sd = sd / sd[sd > 0].mean()
dist = F.smooth_l1_loss(sd, td)
def angles(e):
    v = F.normalize(e.unsqueeze(0) - e.unsqueeze(1), p=2, dim=2)
    return torch.bmm(v, v.transpose(1, 2)).view(-1)
ang = F.smooth_l1_loss(angles(es), angles(et))
z = lambda x: (x - x.mean(1, keepdim=True)) / (x.std(1, keepdim=True) + 1e-7)  # Sun et al. 2024's normalize()
pz = 0.25 * F.softmax(z(t1) / T, 1) + 0.75 * F.softmax(z(t2) / T, 1)
kdz = alpha * T * T * F.kl_div(F.log_softmax(z(s) / T, 1), pz, reduction="batchmean") + (1 - alpha) * F.cross_entropy(s, y)
np.save(f"{d}/ref.npy", np.array([kd.item(), att.item(), dist.item(), ang.item(), kdz.item()], dtype=np.float64))
)";
  auto r = test_support::run_command(test_support::python() + " " + dir.file("ref.py") + " " + dir.path);
  ASSERT_EQ(r.status, 0) << r.output;
  at::Tensor ref = io::read_npy(dir.file("ref.npy"));
  at::Tensor p = distill::soft_targets({t1, t2}, {0.25, 0.75}, 4.0);
  double kd = distill::kd_loss(s, p, y, 4.0, 0.7).item<double>();
  EXPECT_NEAR(kd, ref[0].item<double>(), 1e-5 * std::abs(ref[0].item<double>()));
  // Logit standardization: z-scored logits in the KL term, raw ones in the cross-entropy.
  at::Tensor pz = distill::soft_targets({t1, t2}, {0.25, 0.75}, 4.0, /*standardize=*/true);
  double kdz = distill::kd_loss(s, pz, y, 4.0, 0.7, /*standardize=*/true).item<double>();
  EXPECT_NEAR(kdz, ref[4].item<double>(), 1e-5 * std::abs(ref[4].item<double>()));
  EXPECT_GT(std::abs(kdz - kd), 1e-3);  // the two losses differ on these logits
  EXPECT_NEAR(distill::attention_loss(fs, ft).item<double>(), ref[1].item<double>(), 1e-7);
  // (shrink adds 1e-8 under the square roots so coinciding samples keep a finite gradient)
  EXPECT_NEAR(distill::rkd_distance_loss(es, et).item<double>(), ref[2].item<double>(), 1e-5);
  EXPECT_NEAR(distill::rkd_angle_loss(es, et).item<double>(), ref[3].item<double>(), 1e-5);
  // alpha = 1 is the soft term alone; identical distributions give zero.
  EXPECT_NEAR(distill::kd_loss(t1, distill::soft_targets({t1}, {1.0}, 2.0), y, 2.0, 1.0).item<double>(), 0.0, 1e-6);
}

TEST(Distill, BadRequestsFailBeforeTraining) {
  data::Dataset train = tiny(64, 2);
  ir::Graph teacher = model("lenet5", 1), student = model("mlp", 2);
  distill::DistillOptions o = quick();
  o.temperature = 0;
  EXPECT_NE(error_of([&] { distill::check_distillation({&teacher}, {&student}, o, train); }).find("--temperature must be positive"),
            std::string::npos);
  o = quick();
  o.alpha = 1.5;
  EXPECT_NE(error_of([&] { distill::check_distillation({&teacher}, {&student}, o, train); }).find("--alpha must be in [0, 1]"),
            std::string::npos);
  o = quick();
  o.hints = {{"nope", "relu"}};
  std::string e = error_of([&] { distill::check_distillation({&teacher}, {&student}, o, train); });
  EXPECT_NE(e.find("the teacher has no value 'nope'; candidates: "), std::string::npos) << e;
  EXPECT_NE(e.find("conv.out"), std::string::npos) << e;  // the candidates name the teacher's values
  zoo::ModelOptions five;
  five.input = {1, 28, 28};
  five.classes = 5;
  ir::Graph other = zoo::build_model("lenet5", five);
  o = quick();
  e = error_of([&] { distill::check_distillation({&other}, {&student}, o, train); });
  EXPECT_NE(e.find("teacher 1 gives 5 class scores, the student 10"), std::string::npos) << e;
}

TEST(Distill, HintsTrainAdaptersThatAreDropped) {
  data::Dataset train = tiny(96, 3), test = tiny(32, 4);
  ir::Graph teacher = model("lenet5", 1), student = model("lenet5", 5);
  const size_t nodes = student.nodes().size();
  distill::DistillOptions o = quick();
  std::string t_value, s_value;
  for (const auto& n : teacher.nodes())
    if (n->op_type == "MaxPool" && t_value.empty()) t_value = n->output(0)->name;
  s_value = t_value;
  o.hints = {{t_value, s_value, "fitnet", 1.0}, {t_value, s_value, "attention", 1.0}};
  o.rkd_distance = 1.0;
  o.rkd_angle = 2.0;
  ir::Graph before = student.clone();
  distill::DistillResult r = distill::distill(student, {&teacher}, train, test, o);
  EXPECT_EQ(r.train.history.size(), 1u);
  EXPECT_EQ(student.nodes().size(), nodes);  // adapters and extra outputs gone
  EXPECT_EQ(student.outputs().size(), 1u);
  for (const auto& [name, init] : student.initializers()) EXPECT_EQ(name.find("kd_"), std::string::npos) << name;
  // The student did learn: its weights moved.
  EXPECT_FALSE(at::equal(student.initializer(student.nodes()[0]->input(1)->name)->tensor,
                         before.initializer(before.nodes()[0]->input(1)->name)->tensor));
}

TEST(Distill, TeacherCacheIsWrittenOnceAndReadBack) {
  test_support::TempDir dir;
  data::Dataset train = tiny(96, 6), test = tiny(32, 7);
  ir::Graph teacher = model("lenet5", 1);
  distill::DistillOptions o = quick();
  o.cache_dir = dir.file("cache");
  ir::Graph a = model("mlp", 8), b = model("mlp", 8), c = model("mlp", 8);
  distill::DistillResult first = distill::distill(a, {&teacher}, train, test, o);
  EXPECT_FALSE(first.cache_hit);
  distill::DistillResult second = distill::distill(b, {&teacher}, train, test, o);
  EXPECT_TRUE(second.cache_hit);
  // Cached and recomputed teacher outputs train the same student.
  o.cache_dir.clear();
  distill::distill(c, {&teacher}, train, test, o);
  for (const auto& [name, init] : a.initializers()) {
    EXPECT_TRUE(at::allclose(init.tensor, b.initializer(name)->tensor)) << name;
    EXPECT_TRUE(at::allclose(init.tensor, c.initializer(name)->tensor, 1e-4, 1e-5)) << name;
  }
  o.cache_dir = dir.file("cache");
  o.train.horizontal_flip = true;
  EXPECT_NE(error_of([&] { distill::distill(a, {&teacher}, train, test, o); }).find("without augmentation"),
            std::string::npos);
}

// The teacher runs as deployed (BatchNorm folded into its convs), and what it gives is what
// the graph as imported gives: the cached logits against a plain session on the raw teacher.
TEST(Distill, DeployedTeacherGivesTheRawTeachersLogits) {
  test_support::TempDir dir;
  data::Dataset train = tiny(64, 13), test = tiny(32, 14);
  zoo::ModelOptions mo;
  mo.input = {1, 28, 28};
  mo.classes = 10;
  mo.seed = 15;
  mo.width = 0.25;
  ir::Graph teacher = zoo::build_model("resnet20", mo);
  {  // BatchNorm statistics away from (0, 1), so that folding them changes the weights
    at::NoGradGuard no_grad;
    at::Generator gen = at::detail::createCPUGenerator(16);
    for (const auto& n : teacher.nodes())
      if (n->op_type == "BatchNormalization") {
        teacher.initializer(n->input(3)->name)->tensor.uniform_(-0.5, 0.5, gen);
        teacher.initializer(n->input(4)->name)->tensor.uniform_(0.5, 2.0, gen);
      }
  }
  distill::DistillOptions o = quick();
  o.cache_dir = dir.file("cache");
  ir::Graph student = model("mlp", 17);
  distill::distill(student, {&teacher}, train, test, o);
  std::filesystem::path cached;
  for (const auto& e : std::filesystem::directory_iterator(o.cache_dir)) cached = e.path() / "logits0.npy";
  at::Tensor logits = io::read_npy(cached.string());
  exec::Session raw(teacher);
  at::Tensor expected = raw.run({data::to_float(train.images, train::normalization_for(teacher, train))})[0];
  ASSERT_EQ(logits.sizes(), expected.sizes());
  EXPECT_TRUE(at::allclose(logits, expected, 1e-4, 1e-4)) << (logits - expected).abs().max().item<float>();
}

TEST(Distill, MutualLearningTrainsEveryStudent) {
  data::Dataset train = tiny(96, 9), test = tiny(32, 10);
  std::vector<ir::Graph> students;
  students.push_back(model("mlp", 11));
  students.push_back(model("lenet5", 12));
  ir::Graph mlp0 = students[0].clone(), lenet0 = students[1].clone();
  distill::DistillOptions o = quick();
  o.temperature = 1.0;
  o.alpha = 0.5;
  auto results = distill::mutual(students, train, test, o);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].samples, 32);
  auto moved = [](const ir::Graph& a, const ir::Graph& b) {
    for (const auto& [name, init] : a.initializers())
      if (init.kind == ir::InitKind::Parameter && !at::equal(init.tensor, b.initializer(name)->tensor)) return true;
    return false;
  };
  EXPECT_TRUE(moved(students[0], mlp0));
  EXPECT_TRUE(moved(students[1], lenet0));
}

// With alpha 0 the peers' soft targets weigh nothing, so each student of mutual learning
// must follow exactly the trajectory of training it alone, and keep its own best epoch
// (not the first student's): its weights and test accuracy equal the solo run's.
TEST(Distill, MutualWithoutSoftTargetsEqualsTrainingEachAlone) {
  data::Dataset train = tiny(96, 9), test = tiny(32, 10);
  std::vector<ir::Graph> students;
  students.push_back(model("mlp", 11));
  students.push_back(model("lenet300", 12));
  std::vector<ir::Graph> initial;
  for (const auto& s : students) initial.push_back(s.clone());
  distill::DistillOptions o = quick();
  o.train.epochs = 4;
  o.train.shards = 1;
  o.alpha = 0.0;
  auto results = distill::mutual(students, train, test, o);
  for (size_t i = 0; i < 2; ++i) {
    ir::Graph alone = initial[i].clone();
    train::TrainResult r = train::train(alone, train, test, o.train);
    EXPECT_DOUBLE_EQ(results[i].accuracy, r.best_accuracy) << "student " << i;
    for (const auto& [name, init] : alone.initializers())
      EXPECT_TRUE(at::allclose(students[i].initializer(name)->tensor, init.tensor, 1e-5, 1e-6)) << name;
  }
}

// Born-again networks: generation 0 is the student trained alone, each later one a fresh
// student distilled from the one before. With alpha 0 the soft targets weigh nothing, so
// every generation must equal its own fresh student trained alone (a generation built
// from the wrong seed, or trained with other options, would not).
TEST(Distill, BornAgainGenerationsAreFreshStudents) {
  data::Dataset train = tiny(96, 13), test = tiny(32, 14);
  distill::DistillOptions o = quick();
  o.train.epochs = 2;
  o.train.shards = 1;
  o.alpha = 0.0;
  std::vector<int> made;
  auto make = [&](int g) {
    made.push_back(g);
    return model("mlp", 100 + g);
  };
  distill::BornAgainResult r = distill::born_again(nullptr, make, 2, train, test, o);
  ASSERT_EQ(r.generations.size(), 3u);
  EXPECT_EQ(made, (std::vector<int>{0, 1, 2}));
  for (int g = 0; g < 3; ++g) EXPECT_EQ(r.generations[g].generation, g);
  ir::Graph alone = model("mlp", 102);
  train::train(alone, train, test, o.train);
  for (const auto& [name, init] : alone.initializers())
    EXPECT_TRUE(at::allclose(r.model.initializer(name)->tensor, init.tensor, 1e-5, 1e-6)) << name;
  EXPECT_DOUBLE_EQ(r.generations[2].test_accuracy, train::evaluate(alone, test).accuracy);
  // From a given teacher, generation 0 is not trained again.
  ir::Graph teacher = model("lenet5", 7);
  made.clear();
  r = distill::born_again(&teacher, make, 1, train, test, o);
  EXPECT_EQ(made, (std::vector<int>{1}));
  ASSERT_EQ(r.generations.size(), 1u);
  EXPECT_NE(error_of([&] { distill::born_again(&teacher, make, 0, train, test, o); }).find("at least one generation"),
            std::string::npos);
}

// Mixup inside distillation: the teachers must answer on the mixed images the student
// trains on. A student taught by an exact copy of itself at T=1 with alpha 1 then has
// zero loss and zero gradient, so its weights stay where they are; a teacher shown the
// unmixed images would disagree with it and move them. Seeded: two runs give the same
// weights, and they differ from a run without mixup (where the labels mix too, alpha 0.5).
TEST(Distill, MixupTeachersSeeTheMixedImages) {
  data::Dataset train = tiny(96, 21), test = tiny(32, 22);
  ir::Graph student = model("mlp", 23);
  const ir::Graph teacher = student.clone();
  distill::DistillOptions o = quick();
  o.train.shards = 1;
  o.train.weight_decay = 0;
  o.temperature = 1.0;
  o.alpha = 1.0;
  o.mixup = 0.4;
  distill::distill(student, {&teacher}, train, test, o);
  for (const auto& [name, init] : teacher.initializers())
    EXPECT_TRUE(at::allclose(student.initializer(name)->tensor, init.tensor, 1e-5, 1e-6)) << name;

  o.alpha = 0.5;
  o.temperature = 2.0;
  ir::Graph a = model("mlp", 24), b = model("mlp", 24), c = model("mlp", 24);
  distill::distill(a, {&teacher}, train, test, o);
  distill::distill(b, {&teacher}, train, test, o);
  o.mixup = 0;
  distill::distill(c, {&teacher}, train, test, o);
  bool differs = false;
  for (const auto& [name, init] : a.initializers()) {
    EXPECT_TRUE(at::equal(init.tensor, b.initializer(name)->tensor)) << name;
    differs = differs || !at::allclose(init.tensor, c.initializer(name)->tensor, 1e-3, 1e-4);
  }
  EXPECT_TRUE(differs) << "mixup changed nothing";

  o.mixup = -1;
  EXPECT_NE(error_of([&] { distill::check_distillation({&teacher}, {&a}, o, train); }).find("--mixup must be >= 0"),
            std::string::npos);
  o.mixup = 0.4;
  test_support::TempDir dir;
  o.cache_dir = dir.file("cache");
  EXPECT_NE(error_of([&] { distill::distill(a, {&teacher}, train, test, o); }).find("without augmentation or mixup"),
            std::string::npos);
  o.cache_dir.clear();
  std::vector<ir::Graph> pair;
  pair.push_back(model("mlp", 25));
  pair.push_back(model("mlp", 26));
  EXPECT_NE(error_of([&] { distill::mutual(pair, train, test, o); }).find("--mixup: offline and self"), std::string::npos);
}

// A transformer's tokens against a CNN's feature map, by hand: with a class token and a 2x2
// patch grid, map[n, c, i, j] = tokens[n, 1 + 2 i + j, c]; a map against tokens is pooled to
// the token grid; tokens against tokens drop the extra class token; a grid that is not
// square is a one-line error.
TEST(DistillLosses, TokensMeetFeatureMapsOnThePatchGrid) {
  at::manual_seed(9);
  at::Tensor tokens = at::randn({2, 5, 3}), map = at::randn({2, 3, 2, 2});
  at::Tensor by_hand = at::zeros({2, 3, 2, 2});
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 2; ++j) by_hand.select(2, i).select(2, j).copy_(tokens.select(1, 1 + 2 * i + j));
  EXPECT_NEAR(distill::hint_loss(tokens, map).item<double>(), (by_hand - map).pow(2).mean().item<double>(), 1e-6);
  at::Tensor big = at::randn({2, 3, 4, 4});  // student map 4x4 against the teacher's 2x2 token grid
  EXPECT_NEAR(distill::hint_loss(big, tokens).item<double>(),
              (at::avg_pool2d(big, {2, 2}) - by_hand).pow(2).mean().item<double>(), 1e-6);
  at::Tensor no_class = tokens.narrow(1, 1, 4);
  EXPECT_NEAR(distill::hint_loss(no_class, tokens).item<double>(), 0.0, 1e-12);
  EXPECT_EQ(distill::token_grid(50), 7);
  EXPECT_EQ(distill::token_grid(49), 7);
  EXPECT_EQ(distill::token_grid(7), 0);
  EXPECT_EQ(error_of([&] { distill::hint_loss(at::randn({2, 7, 3}), map); }),
            "hint: 7 tokens are not a square grid (with or without a class token)");
}

// FitNets hints across architectures: a CNN teacher (LeNet-5's pooled map) teaching a ViT
// student (a block's tokens) and a ViT teacher teaching a CNN student; adapters trained,
// then dropped, and the students' weights moved.
TEST(Distill, HintsBetweenACnnAndAVitBothWays) {
  data::Dataset train = tiny(96, 21), test = tiny(32, 22);
  auto value_of = [](const ir::Graph& g, const std::string& op, int rank) {
    std::string name;
    for (const auto& n : g.nodes())
      if (n->op_type == op && n->output(0)->type.rank() == rank && name.empty()) name = n->output(0)->name;
    return name;
  };
  ir::Graph cnn = model("lenet5", 1), vit = model("vit", 2);
  const std::string pooled = value_of(cnn, "MaxPool", 4), tokens = value_of(vit, "LayerNormalization", 3);
  ASSERT_FALSE(pooled.empty());
  ASSERT_FALSE(tokens.empty());
  for (bool vit_student : {true, false}) {
    ir::Graph student = vit_student ? model("vit", 3) : model("lenet5", 4);
    const ir::Graph& teacher = vit_student ? cnn : vit;
    const size_t nodes = student.nodes().size();
    ir::Graph before = student.clone();
    distill::DistillOptions o = quick();
    o.hints = {{vit_student ? pooled : tokens, vit_student ? tokens : pooled, "fitnet", 1.0}};
    distill::DistillResult r = distill::distill(student, {&teacher}, train, test, o);
    EXPECT_EQ(r.train.history.size(), 1u);
    EXPECT_EQ(student.nodes().size(), nodes) << vit_student;
    for (const auto& [name, init] : student.initializers()) {
      EXPECT_EQ(name.find("kd_"), std::string::npos) << name;
    }
    bool moved = false;
    for (const auto& [name, init] : student.initializers())
      moved |= init.tensor.is_floating_point() && !at::equal(init.tensor, before.initializer(name)->tensor);
    EXPECT_TRUE(moved) << vit_student;
  }
  // Tokens whose count is no square grid cannot meet a map: named before training.
  ir::Graph student = model("vit", 3);
  distill::DistillOptions o = quick();
  std::string flat = value_of(cnn, "Gemm", 2);
  o.hints = {{flat, tokens, "fitnet", 1.0}};
  std::string e = error_of([&] { distill::check_distillation({&cnn}, {&student}, o, train); });
  EXPECT_NE(e.find("values must both be [N, C, H, W], tokens [N, T, C]"), std::string::npos) << e;
}
