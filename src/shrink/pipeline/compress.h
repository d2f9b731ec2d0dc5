// `shrink compress`: from a trained model to the smallest (or fastest, or cheapest in
// MACs) model within an accuracy budget, by running a recipe's stages (pipeline/
// recipe.h) as a search, keeping every candidate with its lineage.
//
// The training split is divided once, seeded: a validation part (what every candidate
// is scored on, and what fine-tuning keeps its best epoch by) and the rest (what
// stages train and calibrate on). The test split is read only at the end, for the
// report's figures of the original and the chosen model; the search never sees it.
//
// Every candidate is stored as OUTDIR/cache/KEY.onnx + KEY.json, KEY a hash of (the
// parent's key, the stage, its settings), the root's of (the model's bytes, the data,
// the validation split); each file is written whole and renamed. A run killed at any
// point and started again with `resume` reuses what is there; a changed model or data
// gives new keys, so nothing stale is reused.
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "shrink/data/dataset.h"
#include "shrink/ir/graph.h"
#include "shrink/onnx/export.h"
#include "shrink/pipeline/recipe.h"

namespace shrink::pipeline {

struct CompressOptions {
  std::string outdir;
  Recipe recipe;
  bool resume = false;     // reuse OUTDIR's cache (else OUTDIR must not hold a previous run)
  bool progress = true;    // stage progress bars and one line per candidate on stderr
  std::string input_name;  // for the report and the reproducing commands
  // ONNX Runtime for latency: "node SCRIPT" runner (tools/ort_run.js); "" = not available.
  std::string ort_script;
  std::string reproduce_flags;  // --data (and --storage) flags, appended to the reproducing commands
  // How every candidate's file stores its initializers (its bytes are what the search
  // counts); part of the cache key.
  onnx_io::Storage storage = onnx_io::Storage::Compact;
};

struct Candidate {
  std::string id, parent;       // cache keys ("" parent: the original)
  std::string stage;            // "original", prune, quantize, ...
  nlohmann::json settings;      // the stage's settings (amount relative to the parent's alive weights)
  nlohmann::json report;        // what the stage reported
  nlohmann::json metrics;       // accuracy (validation), drop, bytes, parameters, nonzeros, macs, latency_ms, ...
  std::string file;             // OUTDIR/cache/ID.onnx
  double seconds = 0;           // wall time of its stage (0 when taken from the cache)
  bool cached = false, in_budget = false;
};

struct CompressResult {
  std::vector<Candidate> candidates;  // [0] is the original
  int chosen = 0;
  bool budget_met = false;
  std::vector<std::string> notes;     // skipped stages, limits reached, budget not met
  nlohmann::json report;              // what OUTDIR/report.json holds
  double seconds = 0;
};

// Runs the search over `model` (its metadata says how data is fed). `train` and
// `test` are the data's two splits (`test` may be empty: the final figures are then
// validation figures). Writes OUTDIR/model.onnx, candidates/, report.json, report.html.
CompressResult compress(const ir::Graph& model, const data::Dataset& train, const data::Dataset& test,
                        const CompressOptions& options);

}  // namespace shrink::pipeline
