// Structured pruning: the smaller graph computes exactly what the original computes with
// the removed channels switched off (their filters, biases and BatchNorm affine zeroed),
// on plain, residual, depthwise, concat, split and channel-shuffle networks; ranking,
// caps and per-layer amounts checked by hand; unknown channel behaviour is left alone.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <set>

#include "shrink/core/error.h"
#include "shrink/exec/session.h"
#include "shrink/onnx/export.h"
#include "shrink/onnx/import.h"
#include "shrink/ops/shape_inference.h"
#include "shrink/prune/structured.h"
#include "shrink/report/model_stats.h"
#include "shrink/zoo/builder.h"
#include "shrink/zoo/zoo.h"
#include "support/onnx_builder.h"
#include "support/ort.h"

using namespace shrink;

namespace {

// Non-trivial BatchNorm parameters and statistics, so a wrong slice shows.
void randomize_batch_norms(ir::Graph& g, uint64_t seed) {
  at::manual_seed(seed);
  at::NoGradGuard ng;
  for (const auto& n : g.nodes())
    if (n->op_type == "BatchNormalization")
      for (int i = 1; i <= 4; ++i) {
        at::Tensor t = g.initializer(n->input(i)->name)->tensor;
        t.copy_(i == 4 ? at::rand_like(t) + 0.5 : at::randn_like(t) * 0.5 + (i == 1 ? 1.0 : 0.0));
      }
}

ir::Graph build(const char* name, uint64_t seed) {
  zoo::ModelOptions o;
  o.input = {1, 28, 28};
  o.classes = 10;
  o.seed = seed;
  ir::Graph g = zoo::build_model(name, o);
  randomize_batch_norms(g, seed + 100);
  return g;
}

// The original with every channel the pruning removed switched off: the rows and biases
// of the layers creating it, the depthwise filters carrying it and the BatchNorm scale
// and shift after it set to zero, so it is zero everywhere it flows.
void switch_off_removed(ir::Graph& original, const prune::StructuredReport& r) {
  at::NoGradGuard ng;
  for (const auto& n : original.nodes()) {
    auto it = r.kept.find(n->output(0)->name);
    if (it == r.kept.end()) continue;
    std::set<int64_t> kept(it->second.begin(), it->second.end());
    const std::string& op = n->op_type;
    std::vector<std::pair<int, int64_t>> slots;  // (input, axis) indexed by the output channel
    if (op == "Conv") slots = {{1, 0}, {2, 0}};
    if (op == "Gemm") slots = {{1, n->attrs.get_int("transB", 0) ? 0 : 1}, {2, 0}};
    if (op == "MatMul") slots = {{1, 1}};
    if (op == "BatchNormalization") slots = {{1, 0}, {2, 0}};
    for (auto [input, axis] : slots) {
      if (!n->input(input) || !original.is_initializer(n->input(input))) continue;
      at::Tensor t = original.initializer(n->input(input)->name)->tensor.detach();
      for (int64_t c = 0; c < t.size(axis); ++c)
        if (!kept.count(c)) t.select(axis, c).zero_();
    }
  }
}

void expect_same_as_switched_off(const ir::Graph& pruned, ir::Graph original, const prune::StructuredReport& r,
                                 const at::Tensor& x, const std::string& what) {
  switch_off_removed(original, r);
  at::Tensor expected = exec::run_once(original, {x})[0];
  at::Tensor got = exec::run_once(pruned, {x})[0];
  EXPECT_TRUE(at::allclose(got, expected, 1e-4, 1e-5)) << what << ": max diff " << (got - expected).abs().max().item<float>();
  // The smaller graph is plain ONNX: ONNX Runtime computes the same.
  test_support::TempDir dir;
  onnx_io::export_model(pruned, dir.file("pruned.onnx"));
  at::Tensor ort = test_support::run_onnxruntime(dir.file("pruned.onnx"), {x})[0];
  EXPECT_TRUE(at::allclose(ort, got, 1e-4, 1e-5)) << what << ": ONNX Runtime differs by " << (ort - got).abs().max().item<float>();
}

const prune::ChannelGroup* group_named(const std::vector<prune::ChannelGroup>& groups, const std::string& name) {
  for (const auto& g : groups)
    if (g.name == name) return &g;
  return nullptr;
}

int count_ops(const ir::Graph& g, const std::string& op) {
  int n = 0;
  for (const auto& node : g.nodes()) n += node->op_type == op;
  return n;
}

// conv (8 channels) -> relu -> channel shuffle (2 groups) -> conv (4) -> logits.
ir::Graph shuffle_net() {
  ir::Graph g;
  zoo::Builder b(g);
  ir::Value* x = b.input("input", {1, 6, 6});
  x = b.relu(b.conv(x, 8, 3, 1, 1));
  x = b.conv(b.channel_shuffle(x, 2), 4, 1);
  b.output(b.flatten(b.global_avg_pool(x)));
  return g;
}

// Sets the first conv's filter norms so the given channels rank lowest.
void make_weakest(ir::Graph& g, const std::vector<int64_t>& weakest) {
  at::NoGradGuard ng;
  at::Tensor w = g.initializer(g.nodes()[0]->input(1)->name)->tensor.detach();
  w.normal_(0, 1);
  for (int64_t c : weakest) w[c].mul_(0.01);
}

}  // namespace

TEST(StructuredPruning, GroupsFollowResidualsDepthwiseConcatAndShuffle) {
  // (Groups point into their graph: each graph is kept alive while its groups are read.)
  ir::Graph lenet_graph = build("lenet5", 1);
  auto lenet = prune::channel_groups(lenet_graph);
  int prunable = 0;
  for (const auto& grp : lenet) prunable += grp.prunable();
  EXPECT_EQ(prunable, 4);  // conv, conv1 (through Flatten into fc), fc, fc1
  ASSERT_TRUE(group_named(lenet, "conv1"));
  EXPECT_EQ(group_named(lenet, "conv1")->clusters, 16);  // 16 channels, each a 5x5 block of fc's input
  ASSERT_TRUE(group_named(lenet, "fc2"));
  EXPECT_FALSE(group_named(lenet, "fc2")->prunable());
  EXPECT_NE(group_named(lenet, "fc2")->reason.find("graph output"), std::string::npos);

  // A residual stage: the stem and every block's second conv share channels.
  ir::Graph resnet_graph = build("resnet20", 2);
  auto resnet = prune::channel_groups(resnet_graph);
  ASSERT_TRUE(group_named(resnet, "conv"));
  EXPECT_EQ(group_named(resnet, "conv")->removable, 16);
  EXPECT_EQ(group_named(resnet, "conv")->owners.size(), 4u);

  // SqueezeNet: a fire module's two expand convs meet in a Concat, one group of e1 + e3 channels.
  ir::Graph squeeze = build("squeezenet", 3);
  for (const auto& grp : prune::channel_groups(squeeze)) {
    if (grp.owners.size() != 2 || grp.owners[0]->op_type != "Conv") continue;
    int64_t sum = 0;
    for (ir::Node* n : grp.owners) sum += n->output(0)->type.dims[1];
    EXPECT_EQ(grp.clusters, sum) << grp.name;
    EXPECT_TRUE(grp.prunable()) << grp.name << ": " << grp.reason;
  }

  // ShuffleNetV2: every stage's split, concat and shuffle chain is one prunable group.
  int shuffle_groups = 0;
  ir::Graph shuffle = build("shufflenetv2", 4);
  for (const auto& grp : prune::channel_groups(shuffle)) {
    bool has_shuffle = false;
    for (ir::Value* v : grp.values) has_shuffle = has_shuffle || v->name.find("shuffle") != std::string::npos;
    if (!has_shuffle) continue;
    ++shuffle_groups;
    EXPECT_TRUE(grp.prunable()) << grp.name << ": " << grp.reason;
    EXPECT_EQ(grp.removable, grp.clusters) << grp.name << ": " << grp.reason;
  }
  EXPECT_EQ(shuffle_groups, 3);
}

TEST(StructuredPruning, SmallerGraphEqualsTheOriginalWithChannelsSwitchedOff) {
  for (const char* name : {"lenet5", "resnet20", "mobilenetv2", "squeezenet", "shufflenetv2"}) {
    for (bool global : {false, true}) {
      ir::Graph g = build(name, 3);
      ir::Graph original = g.clone();
      prune::StructuredOptions o;
      o.amount = 0.4;
      o.method = "l2";
      o.global = global;
      prune::StructuredReport r = prune::prune_structured(g, o);
      std::string what = std::string(name) + (global ? " (global)" : " (uniform)");
      ASSERT_FALSE(r.pruned.empty()) << what;
      for (const auto& s : r.skipped) EXPECT_EQ(s.find("has no channel rule"), std::string::npos) << what << ": " << s;
      ops::verify_graph(g);
      EXPECT_LT(report::model_stats(g).parameters, report::model_stats(original).parameters) << what;
      EXPECT_LT(report::model_stats(g).macs, report::model_stats(original).macs) << what;
      at::manual_seed(4);
      expect_same_as_switched_off(g, std::move(original), r, at::randn({3, 1, 28, 28}), what);
    }
  }
}

TEST(StructuredPruning, ShuffleStaysAShuffleOrBecomesAGather) {
  // Removing input channels 1 and 5 (position 1 of both shuffle groups) keeps a shuffle of 6.
  ir::Graph regular = shuffle_net();
  make_weakest(regular, {1, 5});
  ir::Graph original = regular.clone();
  prune::StructuredOptions o;
  o.amount = 0.25;
  o.layers = {regular.nodes()[0]->name};
  prune::StructuredReport r = prune::prune_structured(regular, o);
  ASSERT_EQ(r.pruned.size(), 1u);
  EXPECT_EQ(r.pruned[0].after, 6);
  EXPECT_EQ(count_ops(regular, "Transpose"), 1);
  EXPECT_EQ(count_ops(regular, "Gather"), 0);
  at::manual_seed(5);
  at::Tensor x = at::randn({2, 1, 6, 6});
  expect_same_as_switched_off(regular, std::move(original), r, x, "regular shuffle");

  // Removing channels 1 and 2 (both in the first group) leaves no shuffle: a Gather of the permutation.
  ir::Graph irregular = shuffle_net();
  make_weakest(irregular, {1, 2});
  original = irregular.clone();
  o.layers = {irregular.nodes()[0]->name};
  r = prune::prune_structured(irregular, o);
  EXPECT_EQ(count_ops(irregular, "Transpose"), 0);
  EXPECT_EQ(count_ops(irregular, "Gather"), 1);
  ASSERT_TRUE(r.kept.count("input") == 0);
  expect_same_as_switched_off(irregular, std::move(original), r, x, "irregular shuffle");
}

TEST(StructuredPruning, MatMulLayersWithABiasAdd) {
  test_support::TempDir dir;
  test_support::OnnxBuilder b;
  b.input("x", {-1, 8}).output("y");
  at::manual_seed(6);
  b.initializer("W1", at::randn({8, 6})).initializer("b1", at::randn({6})).initializer("W2", at::randn({6, 3}));
  b.node("MatMul", {"x", "W1"}, {"h"}, "fc1");
  b.node("Add", {"h", "b1"}, {"hb"}, "bias1");
  b.node("Relu", {"hb"}, {"r"}, "relu1");
  b.node("MatMul", {"r", "W2"}, {"y"}, "fc2");
  ir::Graph g = onnx_io::import_model(b.save(dir.file("mlp.onnx")));
  ir::Graph original = g.clone();
  prune::StructuredOptions o;
  o.amount = 0.5;
  prune::StructuredReport r = prune::prune_structured(g, o);
  ASSERT_EQ(r.pruned.size(), 1u);
  EXPECT_EQ(r.pruned[0].after, 3);
  EXPECT_EQ(g.initializer("b1")->tensor.size(0), 3);
  EXPECT_EQ(g.initializer("W2")->tensor.size(0), 3);
  // The bias rides with its channels: switch it off too.
  std::set<int64_t> kept(r.kept.at("h").begin(), r.kept.at("h").end());
  at::Tensor bias = original.initializer("b1")->tensor.detach();
  for (int64_t c = 0; c < 6; ++c)
    if (!kept.count(c)) bias[c].zero_();
  expect_same_as_switched_off(g, std::move(original), r, at::randn({4, 8}), "matmul");
}

TEST(StructuredPruning, TaylorRanksBySquaredFirstOrderTerm) {
  ir::Graph g = build("lenet5", 7);
  const std::string w = g.nodes()[0]->input(1)->name, bias = g.nodes()[0]->input(2)->name;
  at::manual_seed(8);
  std::vector<std::map<std::string, at::Tensor>> batches;
  for (int i = 0; i < 3; ++i)
    batches.push_back({{w, at::randn_like(g.initializer(w)->tensor)}, {bias, at::randn_like(g.initializer(bias)->tensor)}});
  // By hand: per channel, the mean over batches of (sum of w * g over its filter and bias)^2.
  at::Tensor expected = at::zeros({6}, at::kDouble);
  for (const auto& grads : batches) {
    at::Tensor term = (g.initializer(w)->tensor.detach() * grads.at(w)).to(at::kDouble).view({6, -1}).sum(1) +
                      (g.initializer(bias)->tensor.detach() * grads.at(bias)).to(at::kDouble);
    expected += term.pow(2);
  }
  at::Tensor top = std::get<0>(std::get<1>(expected.topk(3)).sort());

  prune::StructuredOptions o;
  o.method = "taylor";
  o.amount = 0.5;
  o.layers = {g.nodes()[0]->name};
  o.gradients = [&](const prune::GradientVisitor& visit) {
    for (const auto& grads : batches) visit(grads);
  };
  prune::StructuredReport r = prune::prune_structured(g, o);
  ASSERT_EQ(r.pruned.size(), 1u);
  std::vector<int64_t> want(top.data_ptr<int64_t>(), top.data_ptr<int64_t>() + 3);
  EXPECT_EQ(r.kept.begin()->second, want);

  o.gradients = nullptr;
  EXPECT_THROW(prune::prune_structured(g, o), Error);
}

TEST(StructuredPruning, GlobalRankingCapsPerLayerAmountsAndRounding) {
  // Global: conv's filters are tiny, so the global ranking takes them first, up to the cap.
  ir::Graph g = build("lenet5", 9);
  {
    at::NoGradGuard ng;
    g.initializer(g.nodes()[0]->input(1)->name)->tensor.detach().mul_(1e-3);
  }
  prune::StructuredOptions o;
  o.method = "l1";
  o.global = true;
  o.amount = 0.1;
  o.max_ratio = 0.5;
  prune::StructuredReport r = prune::prune_structured(g, o);
  // 6 + 16 + 120 + 84 = 226 channels; 10% is 23; conv's group is capped at 3 of 6.
  int64_t removed = 0;
  ASSERT_FALSE(r.pruned.empty());
  EXPECT_EQ(r.pruned[0].name, "conv");
  EXPECT_EQ(r.pruned[0].after, 3);
  for (const auto& p : r.pruned) {
    removed += p.before - p.after;
    EXPECT_LE(p.before - p.after, p.before / 2) << p.name;
  }
  EXPECT_EQ(removed, 23);

  // Per-layer amounts: only the named group moves when the default is zero.
  ir::Graph h = build("lenet5", 10);
  prune::StructuredOptions per;
  per.amount = 0.0;
  per.layer_amounts = {{"conv1", 0.5}};
  per.round_to = 3;
  r = prune::prune_structured(h, per);
  ASSERT_EQ(r.pruned.size(), 1u);
  EXPECT_EQ(r.pruned[0].name, "conv1");
  EXPECT_EQ(r.pruned[0].after, 9);  // 8 kept, rounded up to a multiple of 3
}

TEST(StructuredPruning, BadRequestsAreClearErrors) {
  auto message = [](const prune::StructuredOptions& o) -> std::string {
    ir::Graph g = build("lenet5", 11);
    try {
      prune::prune_structured(g, o);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  prune::StructuredOptions o;
  o.layers = {"fc2"};
  EXPECT_NE(message(o).find("graph output"), std::string::npos) << message(o);
  o.layers = {"nope"};
  EXPECT_NE(message(o).find("no node named 'nope'"), std::string::npos) << message(o);
  std::string relu;
  ir::Graph lenet = build("lenet5", 11);
  for (const auto& n : lenet.nodes())
    if (n->op_type == "Relu") relu = n->name;
  o.layers = {relu};
  EXPECT_NE(message(o).find("is not a Conv"), std::string::npos) << message(o);
  o.layers = {};
  o.amount = 1.0;
  EXPECT_NE(message(o).find("--amount"), std::string::npos);
  o.amount = 0.5;
  o.layer_amounts = {{"conv", 1.5}};
  EXPECT_NE(message(o).find("--layer-amount"), std::string::npos);
}

TEST(StructuredPruning, UnknownOpsLeaveTheirChannelsAlone) {
  // conv1 -> Softmax over channels (no channel rule) -> conv2 -> Relu -> conv3 -> output.
  test_support::TempDir dir;
  test_support::OnnxBuilder b;
  b.input("x", {2, 1, 6, 6}).output("y");
  at::manual_seed(12);
  b.initializer("w1", at::randn({4, 1, 3, 3})).initializer("w2", at::randn({6, 4, 1, 1}));
  b.initializer("w3", at::randn({2, 6, 1, 1}));
  b.node("Conv", {"x", "w1"}, {"a"}, "conv1");
  test_support::OnnxBuilder::attr(b.node("Softmax", {"a"}, {"s"}, "soft"), "axis", int64_t{1});
  b.node("Conv", {"s", "w2"}, {"c"}, "conv2");
  b.node("Relu", {"c"}, {"r"}, "relu");
  b.node("Conv", {"r", "w3"}, {"y"}, "conv3");
  ir::Graph g = onnx_io::import_model(b.save(dir.file("m.onnx")));
  ir::Graph original = g.clone();
  prune::StructuredOptions o;
  o.amount = 0.5;
  prune::StructuredReport r = prune::prune_structured(g, o);
  ASSERT_EQ(r.pruned.size(), 1u);
  EXPECT_EQ(r.pruned[0].name, "conv2");
  EXPECT_EQ(r.pruned[0].after, 3);
  ASSERT_EQ(r.skipped.size(), 2u);
  EXPECT_EQ(r.skipped[0], "group 'conv1': node 'soft' (Softmax) has no channel rule");
  EXPECT_EQ(r.skipped[1], "group 'conv3': graph output 'y'");
  expect_same_as_switched_off(g, std::move(original), r, at::randn({2, 1, 6, 6}), "unknown op");
}

TEST(StructuredPruning, GroupedConvolutionsLoseWholeGroups) {
  // conv (8) -> relu -> grouped conv (8 -> 12, 4 groups of 2 in / 3 out) -> relu -> conv (4) -> logits.
  ir::Graph g;
  zoo::Builder b(g);
  ir::Value* x = b.input("input", {1, 6, 6});
  x = b.relu(b.conv(x, 8, 3, 1, 1));
  x = b.relu(b.conv(x, 12, 3, 1, 1, 4));
  b.output(b.flatten(b.global_avg_pool(b.conv(x, 4, 1))));
  ir::Graph original = g.clone();
  auto groups = prune::channel_groups(g);
  ASSERT_TRUE(group_named(groups, g.nodes()[0]->name));
  EXPECT_EQ(group_named(groups, g.nodes()[0]->name)->clusters, 4);  // one per convolution group
  prune::StructuredOptions o;
  o.amount = 0.5;
  o.layers = {g.nodes()[0]->name};
  prune::StructuredReport r = prune::prune_structured(g, o);
  ASSERT_EQ(r.pruned.size(), 1u);
  EXPECT_EQ(r.pruned[0].after, 2);
  const ir::Node* grouped = g.nodes()[2].get();
  EXPECT_EQ(grouped->attrs.get_int("group"), 2);
  EXPECT_EQ(grouped->output(0)->type.dims[1], 6);
  EXPECT_EQ(g.nodes()[0]->output(0)->type.dims[1], 4);
  at::manual_seed(13);
  expect_same_as_switched_off(g, std::move(original), r, at::randn({2, 1, 6, 6}), "grouped conv");
}
