// A compress recipe: the target, the budget, the limits and an ordered list of stages
// whose settings may hold alternatives to search (a list, or {from, to, step}). Read
// from YAML (yaml-cpp) or JSON; every error names the key and, for a file, its line.
//
//   target: size                # size | latency | macs
//   max_drop: 0.5               # accuracy points on the validation split (or agreement points)
//   stages:
//     - prune: {method: global, amount: [0.8, 0.9, 0.95], finetune: 2, lr: 0.01}
//     - quantize: {mode: codebook, bits: [4, 5], finetune: 1}
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "shrink/pipeline/stage.h"

namespace shrink::pipeline {

struct StageSpec {
  std::string kind;                  // prune, quantize, codebook, factorize, finetune
  nlohmann::json settings;           // values may be alternatives (see expand())
  std::string where;                 // "recipe.yaml: stage 2 (prune)"
  std::map<std::string, int> lines;  // setting -> line in the file (YAML, JSON: none)
  std::string file;
  // `optional: true`: the stage may be passed over, its parents stay candidates for the
  // next stage beside its children (e.g. distil into a smaller student when it pays).
  bool optional = false;
  Fields::Locate locate() const;
  // Every combination of the alternatives, in order (the last key varies fastest).
  std::vector<nlohmann::json> expand() const;
};

struct Budget {
  double max_drop = 1.0;          // points (absolute), or percent of the original's accuracy
  bool relative = false;          // max_drop_relative given
  int64_t target_bytes = 0;       // 0: none
  double target_latency_ms = 0;   // 0: none
  int64_t latency_batch = 64;
  std::string latency_in = "shrink";  // shrink | onnxruntime
};

struct Recipe {
  std::string target = "size";    // what the search minimises within the budget
  Budget budget;
  int trials = 0;                 // candidates evaluated at most (0: no limit)
  double minutes = 0;             // stop starting stages after this long (0: no limit)
  int64_t validation_samples = 10000;  // held out of the training split, seeded
  uint64_t seed = 0;
  int keep = 2;                   // candidates each stage passes on (the best by the target)
  std::vector<StageSpec> stages;
  std::string source = "default"; // the file, or "default (size)"
};

// Reads FILE (.yaml/.yml: YAML; .json or anything else starting with '{': JSON).
Recipe read_recipe(const std::string& path);
// The same from text (`name` in errors).
Recipe parse_recipe(const std::string& text, const std::string& name);
// The search that suits a target when no recipe is given. For size, a model of the
// zoo (its graph named after the architecture) is first offered a half-width student
// distilled from it (an optional stage: kept only where it stays within the budget).
Recipe default_recipe(const std::string& target, const std::string& zoo_model = "");
// The recipe as JSON (for report.json and to write one out as a starting point).
nlohmann::json recipe_json(const Recipe& r);

}  // namespace shrink::pipeline
