// Attention-head pruning on the zoo's ViT (the form PyTorch exports attention with
// separate Q, K, V projections). Removing a head equals switching it off (its V columns
// and V bias zeroed: its output is then zero, whatever its attention weights), and
// removing an MLP hidden unit equals zeroing its fc1 column and bias (GELU(0) = 0); so the
// pruned model must compute what the original computes with those switched off.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <set>

#include "shrink/exec/session.h"
#include "shrink/onnx/export.h"
#include "shrink/prune/heads.h"
#include "shrink/prune/structured.h"
#include "shrink/zoo/zoo.h"
#include "support/onnx_builder.h"
#include "support/ort.h"

using namespace shrink;

namespace {

ir::Graph random_vit(int64_t depth, int64_t heads) {
  zoo::ModelOptions o;
  o.depth = depth;
  o.heads = heads;
  ir::Graph g = zoo::build_model("vit", o);
  at::manual_seed(5);
  std::vector<std::string> names;
  for (const auto& [name, init] : g.initializers())
    if (init.kind == ir::InitKind::Parameter) names.push_back(name);
  at::NoGradGuard no_grad;
  for (const auto& name : names) {
    at::Tensor& t = g.initializer(name)->tensor;
    t.copy_(at::randn_like(t) * 0.3);
  }
  return g;
}

// Zeroes the columns of `weight` (and entries of `bias`) outside `kept`.
void switch_off(ir::Graph& g, const std::string& weight, const std::string& bias, const std::vector<int64_t>& kept,
                int64_t width) {
  at::Tensor mask = at::zeros({width}, at::kFloat);
  for (int64_t k : kept) mask[k] = 1.0f;
  at::NoGradGuard no_grad;
  g.initializer(weight)->tensor.mul_(mask);
  g.initializer(bias)->tensor.mul_(mask);
}

}  // namespace

TEST(Heads, FindsEveryBlockOfTheZooVit) {
  ir::Graph g = random_vit(3, 4);
  std::vector<prune::AttentionBlock> blocks = prune::find_attention_blocks(g);
  ASSERT_EQ(blocks.size(), 3u);
  for (const auto& b : blocks) {
    EXPECT_EQ(b.heads, 4);
    EXPECT_EQ(b.head_dim, 16);
    EXPECT_TRUE(b.q_bias && b.k_bias && b.v_bias);
  }
  EXPECT_EQ(blocks[0].name, "encoder.0.attn.q");
}

TEST(Heads, PrunedVitEqualsTheOriginalWithHeadsAndUnitsSwitchedOff) {
  for (const char* method : {"l1", "l2", "random"}) {
    ir::Graph g = random_vit(2, 4);
    ir::Graph off = g.clone(), original = g.clone();
    prune::StructuredOptions o;
    o.method = method;
    o.amount = 0.5;
    prune::StructuredReport report = prune::prune_structured(g, o);
    int heads = 0, units = 0;
    for (const auto& p : report.pruned) {
      if (p.name.find("(heads)") != std::string::npos) {
        EXPECT_EQ(p.before, 4);
        EXPECT_EQ(p.after, 2);
        ++heads;
      } else if (p.name.find("mlp.fc1") != std::string::npos) {
        EXPECT_EQ(p.after, 64);
        ++units;
      }
    }
    ASSERT_EQ(heads, 2) << method;
    ASSERT_EQ(units, 2) << method;
    for (int i = 0; i < 2; ++i) {
      std::string blk = "encoder." + std::to_string(i) + ".";
      const std::vector<int64_t>& q = report.kept.at(blk + "attn.q.out");
      EXPECT_EQ(q.size(), 32u);
      EXPECT_EQ(report.kept.at(blk + "attn.v.out"), q);  // Q, K, V lose the same heads
      switch_off(off, blk + "attn.v.weight", blk + "attn.v.bias", q, 64);
      switch_off(off, blk + "mlp.fc1.weight", blk + "mlp.fc1.bias", report.kept.at(blk + "mlp.fc1.out"), 128);
      EXPECT_EQ(g.initializer(blk + "attn.out.weight")->tensor.sizes(), (std::vector<int64_t>{32, 64}));
    }
    at::Tensor x = at::randn({3, 1, 28, 28});
    at::Tensor want = exec::run_once(off, {x})[0];
    at::Tensor got = exec::run_once(g, {x})[0];
    // Switching them off changes the output: the comparison below can fail.
    EXPECT_GT((want - exec::run_once(original, {x})[0]).abs().max().item<double>(), 1e-2) << method;
    EXPECT_LE((got - want).abs().max().item<double>(), 1e-4 * want.abs().max().item<double>()) << method;
    test_support::TempDir dir;
    onnx_io::export_model(g, dir.file("pruned.onnx"));
    at::Tensor ort = test_support::run_onnxruntime(dir.file("pruned.onnx"), {x})[0];
    EXPECT_LE((ort - got).abs().max().item<double>(), 1e-4) << method;
  }
}

TEST(Heads, RankedByNormTheWeakestHeadsGo) {
  ir::Graph g = random_vit(1, 4);
  {  // head 2 (columns 32..47) made the weakest everywhere
    at::NoGradGuard no_grad;
    for (const char* w : {"q", "k", "v"})
      g.initializer(std::string("encoder.0.attn.") + w + ".weight")->tensor.slice(1, 32, 48).mul_(0.01);
    g.initializer("encoder.0.attn.out.weight")->tensor.slice(0, 32, 48).mul_(0.01);
  }
  prune::StructuredOptions o;
  o.method = "l2";
  o.amount = 0.25;
  prune::StructuredReport report = prune::prune_structured(g, o);
  std::vector<int64_t> want;
  for (int64_t c = 0; c < 64; ++c)
    if (c < 32 || c >= 48) want.push_back(c);
  EXPECT_EQ(report.kept.at("encoder.0.attn.q.out"), want);
  // At most all heads but one go, whatever the amount.
  ir::Graph h = random_vit(1, 4);
  o.amount = 0.9;
  report = prune::prune_structured(h, o);
  EXPECT_EQ(report.kept.at("encoder.0.attn.k.out").size(), 16u);
}

// --embedding: the residual stream is one group through the patch embedding, class token,
// learned positions, every LayerNormalization, residual Add and the head. Every parameter
// that reads or writes it keeps exactly the same channels (checked against the original
// sliced by hand); the pruned file runs in ONNX Runtime as in shrink; without the flag the
// LayerNorms leave the width alone and say so.
TEST(Heads, EmbeddingWidthIsPrunedAcrossNormsAndResiduals) {
  ir::Graph g = random_vit(2, 4);
  ir::Graph original = g.clone();
  ir::Graph without = g.clone();
  prune::StructuredOptions o;
  o.method = "l2";
  o.amount = 0.5;
  prune::StructuredReport plain = prune::prune_structured(without, o);
  bool named = false;
  for (const auto& s : plain.skipped) named = named || s.find("--embedding") != std::string::npos;
  EXPECT_TRUE(named);
  EXPECT_EQ(without.initializer("patch.conv.weight")->tensor.size(0), 64);

  o.embedding = true;
  prune::StructuredReport report = prune::prune_structured(g, o);
  auto it = report.kept.find("patch.conv.out");
  std::string skipped;
  for (const auto& s : report.skipped) skipped += s + "\n";
  ASSERT_NE(it, report.kept.end()) << skipped;
  const std::vector<int64_t>& kept = it->second;
  ASSERT_EQ(kept.size(), 32u);
  at::Tensor k = at::tensor(kept, at::kLong);
  auto same = [&](const std::string& name, int64_t axis) {
    const ir::Initializer* got = g.initializer(name);
    ASSERT_NE(got, nullptr) << name;
    at::Tensor want = original.initializer(name)->tensor.index_select(axis, k);
    EXPECT_TRUE(at::equal(got->tensor, want)) << name << " " << got->tensor.sizes() << " vs " << want.sizes();
  };
  same("patch.conv.weight", 0);
  same("patch.conv.bias", 0);
  same("class_token", 2);
  same("pos_embedding", 2);
  for (int i = 0; i < 2; ++i) {
    std::string blk = "encoder." + std::to_string(i) + ".";
    EXPECT_EQ(g.initializer(blk + "attn.q.weight")->tensor.size(0), 32) << "reads the stream";
    EXPECT_EQ(g.initializer(blk + "attn.out.weight")->tensor.size(1), 32) << "writes the stream";
    EXPECT_EQ(g.initializer(blk + "mlp.fc2.bias")->tensor.size(0), 32);
  }
  int norms = 0;
  for (const auto& n : g.nodes()) {
    if (n->op_type != "LayerNormalization") continue;
    same(n->input(1)->name, 0);
    same(n->input(2)->name, 0);
    ++norms;
  }
  EXPECT_EQ(norms, 5);
  const ir::Node* head = g.find_node("head.fc");
  ASSERT_NE(head, nullptr);
  EXPECT_EQ(g.initializer(head->input(1)->name)->tensor.size(head->attrs.get_int("transB", 0) ? 1 : 0), 32);

  at::Tensor x = at::randn({3, 1, 28, 28});
  at::Tensor got = exec::run_once(g, {x})[0];
  EXPECT_EQ(got.sizes(), (std::vector<int64_t>{3, 10}));
  test_support::TempDir dir;
  onnx_io::export_model(g, dir.file("pruned.onnx"));
  at::Tensor ort = test_support::run_onnxruntime(dir.file("pruned.onnx"), {x})[0];
  EXPECT_LE((ort - got).abs().max().item<double>(), 1e-4);
}
