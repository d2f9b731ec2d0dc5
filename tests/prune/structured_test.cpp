// Structured pruning: the smaller graph computes exactly what the original computes with
// the removed channels switched off (their filters, biases and BatchNorm affine zeroed),
// on plain, residual and depthwise networks; unknown channel behaviour is left alone.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <set>

#include "shrink/core/error.h"
#include "shrink/exec/session.h"
#include "shrink/onnx/export.h"
#include "shrink/ops/shape_inference.h"
#include "shrink/prune/structured.h"
#include "shrink/report/model_stats.h"
#include "shrink/zoo/zoo.h"
#include "support/onnx_builder.h"
#include "support/ort.h"

using namespace shrink;

namespace {

ir::Graph build(const char* name, uint64_t seed) {
  zoo::ModelOptions o;
  o.input = {1, 28, 28};
  o.classes = 10;
  o.seed = seed;
  ir::Graph g = zoo::build_model(name, o);
  // Non-trivial BatchNorm parameters and statistics, so a wrong slice shows.
  at::manual_seed(seed + 100);
  at::NoGradGuard ng;
  for (const auto& n : g.nodes())
    if (n->op_type == "BatchNormalization")
      for (int i = 1; i <= 4; ++i) {
        at::Tensor t = g.initializer(n->input(i)->name)->tensor;
        t.copy_(i == 4 ? at::rand_like(t) + 0.5 : at::randn_like(t) * 0.5 + (i == 1 ? 1.0 : 0.0));
      }
  return g;
}

// The original with every channel the pruning removed switched off: owners' rows and
// biases and BatchNorm scale and shift set to zero (ReLU(0) = 0 then feeds nothing).
void switch_off_removed(ir::Graph& original, const prune::StructuredReport& r) {
  at::NoGradGuard ng;
  for (const prune::ChannelGroup& grp : prune::channel_groups(original)) {
    auto it = std::find_if(r.pruned.begin(), r.pruned.end(), [&](const auto& p) { return p.name == grp.name(); });
    if (it == r.pruned.end()) continue;
    std::set<int64_t> kept(it->kept.begin(), it->kept.end());
    for (int64_t c = 0; c < grp.channels; ++c) {
      if (kept.count(c)) continue;
      for (ir::Node* n : grp.owners) {
        bool gemm_t = n->op_type == "Gemm" && n->attrs.get_int("transB", 0) == 0;
        at::Tensor w = original.initializer(n->input(1)->name)->tensor.detach();
        (gemm_t ? w.select(1, c) : w[c]).zero_();
        if (n->input(2)) original.initializer(n->input(2)->name)->tensor.detach()[c].zero_();
      }
      for (ir::Node* n : grp.batch_norms) {
        original.initializer(n->input(1)->name)->tensor.detach()[c].zero_();
        original.initializer(n->input(2)->name)->tensor.detach()[c].zero_();
      }
    }
  }
}

}  // namespace

TEST(StructuredPruning, GroupsFollowResidualsDepthwiseAndFlatten) {
  ir::Graph lenet = build("lenet5", 1);
  auto groups = prune::channel_groups(lenet);
  int prunable = 0;
  for (const auto& grp : groups) prunable += grp.prunable;
  EXPECT_EQ(prunable, 4);  // conv, conv1 (through Flatten into fc), fc, fc1; fc2 is the output
  for (const auto& grp : groups)
    if (grp.name() == "conv1") {
      ASSERT_EQ(grp.consumers.size(), 1u);
      EXPECT_EQ(grp.consumers[0].block, 25);  // 16x5x5 flattened into fc
    }

  ir::Graph resnet = build("resnet20", 2);
  for (const auto& grp : prune::channel_groups(resnet)) {
    if (grp.name() == "stem.conv" || grp.owners.size() > 1) {
      // A residual stage: the stem or projection and every block's second conv share channels.
      EXPECT_TRUE(grp.prunable) << grp.name() << ": " << grp.reason;
    }
  }
}

TEST(StructuredPruning, SmallerGraphEqualsTheOriginalWithChannelsSwitchedOff) {
  for (const char* name : {"lenet5", "resnet20", "mobilenetv2", "squeezenet", "shufflenetv2"}) {
    ir::Graph g = build(name, 3);
    ir::Graph original = g.clone();
    prune::StructuredOptions o;
    o.amount = 0.5;
    o.method = "l2";
    prune::StructuredReport r = prune::prune_structured(g, o);
    ASSERT_FALSE(r.pruned.empty()) << name;
    if (std::string(name) == "shufflenetv2" || std::string(name) == "squeezenet") {
      // Concat (and ShuffleNet's split and shuffle) have no channel rule yet: those groups are reported, not guessed.
      ASSERT_FALSE(r.skipped.empty()) << name;
      EXPECT_NE(r.skipped.front().find("has no channel rule"), std::string::npos) << r.skipped.front();
    }
    ops::verify_graph(g);
    EXPECT_LT(report::model_stats(g).parameters, report::model_stats(original).parameters) << name;
    EXPECT_LT(report::model_stats(g).macs, report::model_stats(original).macs) << name;
    switch_off_removed(original, r);
    at::manual_seed(4);
    at::Tensor x = at::randn({3, 1, 28, 28});
    at::Tensor expected = exec::run_once(original, {x})[0];
    at::Tensor got = exec::run_once(g, {x})[0];
    EXPECT_TRUE(at::allclose(got, expected, 1e-4, 1e-5)) << name << ": max diff " << (got - expected).abs().max().item<float>();
    // The smaller graph is plain ONNX: ONNX Runtime computes the same.
    test_support::TempDir dir;
    onnx_io::export_model(g, dir.file("pruned.onnx"));
    at::Tensor ort = test_support::run_onnxruntime(dir.file("pruned.onnx"), {x})[0];
    EXPECT_TRUE(at::allclose(ort, got, 1e-4, 1e-5)) << name << ": ONNX Runtime differs by " << (ort - got).abs().max().item<float>();
  }
}
