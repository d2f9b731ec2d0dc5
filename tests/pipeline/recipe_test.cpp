// Recipes and stage settings: what they accept, how alternatives expand, and that
// every bad key or value is a one-line error naming the key and its line.
#include <gtest/gtest.h>

#include <string>

#include "shrink/core/error.h"
#include "shrink/pipeline/prune_stage.h"
#include "shrink/pipeline/recipe.h"
#include "shrink/pipeline/stage.h"

using namespace shrink;
using namespace shrink::pipeline;

namespace {

std::string error_of(const std::string& text, const std::string& name = "r.yaml") {
  try {
    parse_recipe(text, name);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Recipe, ReadsYamlWithAlternativesAndRanges) {
  Recipe r = parse_recipe(
      "target: size\n"
      "max_drop: 0.3\n"
      "trials: 12\n"
      "stages:\n"
      "  - prune: {method: global, amount: [0.5, 0.9], finetune: 1}\n"
      "  - codebook:\n"
      "      bits: {from: 3, to: 5, step: 1}\n"
      "      layer_bits: {conv: 8}\n"
      "  - quantize: {mode: static, exclude: [fc, fc1]}\n",
      "r.yaml");
  EXPECT_EQ(r.target, "size");
  EXPECT_DOUBLE_EQ(r.budget.max_drop, 0.3);
  EXPECT_EQ(r.trials, 12);
  ASSERT_EQ(r.stages.size(), 3u);
  auto prune = r.stages[0].expand();
  ASSERT_EQ(prune.size(), 2u);
  EXPECT_DOUBLE_EQ(prune[0]["amount"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(prune[1]["amount"].get<double>(), 0.9);
  EXPECT_EQ(prune[1]["method"], "global");
  auto codebook = r.stages[1].expand();
  ASSERT_EQ(codebook.size(), 3u);  // 3, 4, 5
  EXPECT_EQ(codebook[2]["bits"].get<int>(), 5);
  EXPECT_EQ(codebook[0]["layer_bits"]["conv"].get<int>(), 8);  // a mapping is one value, not alternatives
  auto quant = r.stages[2].expand();
  ASSERT_EQ(quant.size(), 1u);  // exclude is a list-valued setting: one value
  EXPECT_EQ(quant[0]["exclude"].size(), 2u);
}

TEST(Recipe, JsonIsAcceptedToo) {
  Recipe r = parse_recipe(R"({"target": "latency", "max_drop_relative": 2, "stages": [{"prune": {"method": "ln-structured", "amount": 0.5}}]})",
                          "r.json");
  EXPECT_EQ(r.target, "latency");
  EXPECT_TRUE(r.budget.relative);
  EXPECT_DOUBLE_EQ(r.budget.max_drop, 2);
  EXPECT_EQ(r.stages[0].expand().size(), 1u);
}

TEST(Recipe, ErrorsNameTheKeyAndTheLine) {
  EXPECT_EQ(error_of("target: size\nmax_dorp: 1\nstages:\n  - prune: {}\n").rfind("r.yaml:2: 'max_dorp': no such key", 0), 0u)
      << error_of("target: size\nmax_dorp: 1\nstages:\n  - prune: {}\n");
  EXPECT_EQ(error_of("target: tiny\nstages:\n  - prune: {}\n"), "r.yaml:1: 'target': expected size, latency or macs, got 'tiny'");
  // A stage setting: its own line, the stage named.
  std::string e = error_of("stages:\n  - prune:\n      method: global\n      amount: 1.5\n");
  EXPECT_EQ(e, "r.yaml:4: stage 1 (prune): 'amount': expected a fraction in [0, 1)") << e;
  e = error_of("stages:\n  - prune:\n      amount: [0.5, 0.9]\n      finetun: 2\n");
  EXPECT_EQ(e, "r.yaml:4: stage 1 (prune): 'finetun': no such setting") << e;
  e = error_of("stages:\n  - prune: {amount: [0.5, 2]}\n");  // every alternative is checked, not only the first
  EXPECT_NE(e.find("'amount': expected a fraction in [0, 1)"), std::string::npos) << e;
  e = error_of("stages:\n  - shrinkify: {}\n");
  EXPECT_EQ(e, "r.yaml:2: stage 1: unknown stage 'shrinkify' (known: distill, prune, quantize, codebook, factorize, finetune)") << e;
  e = error_of("stages:\n  - codebook: {bits: 9}\n");
  EXPECT_NE(e.find("codebook mode takes 2 to 8 bits, got 9"), std::string::npos) << e;
  e = error_of("stages:\n  - quantize: {mode: static, observer: best}\n");
  EXPECT_NE(e.find("'observer': expected minmax"), std::string::npos) << e;
  e = error_of("stages:\n  - prune: {amount: {from: 0.5, to: 0.9}}\n");
  EXPECT_NE(e.find("'amount': a range needs a positive step"), std::string::npos) << e;
  EXPECT_EQ(error_of("stages: []\n"), "r.yaml:1: 'stages': expected a non-empty list of stages");
  EXPECT_EQ(error_of("max_drop: 1\n"), "r.yaml: 'stages': missing (a list such as - prune: {amount: 0.9})");
  EXPECT_NE(error_of("stages: [prune: {amount: 0.5}\n").find("not valid YAML"), std::string::npos);
  EXPECT_NE(error_of("{\"stages\": [", "r.json").find("r.json: not valid JSON"), std::string::npos);
  EXPECT_EQ(error_of("max_drop: -1\nstages:\n  - prune: {}\n"), "r.yaml:1: 'max_drop': expected a drop >= 0");
}

TEST(Recipe, DefaultsSuitTheirTarget) {
  EXPECT_EQ(default_recipe("size").stages.back().kind, "codebook");
  EXPECT_EQ(default_recipe("latency").stages[0].settings["method"], "ln-structured");
  EXPECT_EQ(default_recipe("latency").stages[0].settings["round_to"], "auto");
  ASSERT_EQ(default_recipe("latency").stages.size(), 3u);  // low-rank only where it measures faster
  EXPECT_EQ(default_recipe("latency").stages[1].kind, "factorize");
  EXPECT_TRUE(default_recipe("latency").stages[1].optional);
  EXPECT_EQ(default_recipe("macs").stages.back().kind, "factorize");
  // A zoo model is first offered a distilled half-width student, optionally.
  Recipe z = default_recipe("size", "lenet5");
  ASSERT_EQ(z.stages.size(), 3u);
  EXPECT_EQ(z.stages[0].kind, "distill");
  EXPECT_TRUE(z.stages[0].optional);
  EXPECT_EQ(default_recipe("size", "").stages.size(), 2u);
  Recipe o = parse_recipe("stages:\n  - distill: {student: mlp, optional: true}\n  - prune: {}\n", "r.yaml");
  EXPECT_TRUE(o.stages[0].optional);
  EXPECT_FALSE(o.stages[0].settings.contains("optional"));
  EXPECT_EQ(error_of("stages:\n  - prune: {optional: 2}\n"), "r.yaml:2: stage 1: 'optional': expected true or false");
  // Each default builds valid stages for every alternative.
  for (const char* t : {"size", "latency", "macs"})
    for (const auto& s : default_recipe(t, "lenet5").stages)
      for (const auto& alt : s.expand()) EXPECT_NO_THROW(make_stage(s.kind, alt));
}

TEST(StageSettings, RoundTripThroughJson) {
  PruneSettings p;
  p.method = "global";
  p.amount = 0.9;
  p.schedule = "iterative:3";
  p.finetune = 2;
  auto stage = make_stage("prune", p.to_json());
  EXPECT_EQ(stage->name(), "prune");
  EXPECT_EQ(stage->settings(), p.to_json());
  EXPECT_TRUE(stage->needs_training_data());
  // The codebook stage is also quantize with mode codebook, as on the command line.
  EXPECT_EQ(make_stage("quantize", {{"mode", "codebook"}, {"bits", 3}})->name(), "codebook");
  EXPECT_FALSE(make_stage("quantize", {{"mode", "dynamic"}})->needs_training_data());
  EXPECT_THROW(make_stage("prune", {{"schedule", "agp"}}), Error);  // agp needs fine-tuning epochs
  EXPECT_THROW(make_stage("prune", {{"amount", "lots"}}), Error);
  EXPECT_THROW(make_stage("finetune", {{"epochs", 0}}), Error);
  EXPECT_THROW(make_stage("factorize", {{"rank", "8"}, {"energy", 0.9}}), Error);
}
