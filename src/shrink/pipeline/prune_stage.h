// The pruning stage: unstructured (l1, random, global magnitude) or structured (filter
// norms, BN scale, Taylor, random) pruning, one shot, in iterative prune/fine-tune rounds
// (Han et al. 2015) or gradually during fine-tuning (AGP, Zhu & Gupta 2017).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "shrink/pipeline/stage.h"

namespace shrink::pipeline {

struct PruneSettings {
  std::string method = "l1";  // l1, random, global, ln-structured, slim, taylor, random-structured
  double amount = 0.5;        // fraction removed in the end, [0, 1)
  std::string schedule = "oneshot";  // oneshot, iterative:N, agp
  int finetune = 0;           // epochs after each round (agp: during which it prunes)
  double lr = 0.01;
  int64_t batch = 128;
  std::vector<std::string> layers, ignore;
  double min_keep = 0.01;
  uint64_t seed = 0;
  bool soft = false;
  int norm = 2;               // ln-structured
  int64_t round_to = 1;
  std::string ranking = "uniform";  // structured: uniform or global
  bool embedding = false;           // structured: transformers' embedding width too (prune/structured.h)
  double max_ratio = 1.0;
  std::map<std::string, double> layer_amount;  // structured
  int64_t taylor_batches = 32;
  double agp_end = 0.75;
  int64_t agp_every = 50;

  void read(Fields& f);
  nlohmann::json to_json() const;
  // The combinations that make no sense, as one-line errors naming the setting (as
  // a flag, --max-ratio, when `cli`).
  void check(bool cli = false) const;
  bool structured() const;
  int rounds(bool cli = false) const;
};

class PruneStage : public Stage {
 public:
  explicit PruneStage(PruneSettings s);
  std::string name() const override { return "prune"; }
  nlohmann::json settings() const override { return s_.to_json(); }
  bool needs_training_data() const override { return s_.finetune > 0 || s_.method == "taylor"; }
  // Report: rounds [{round, amount, finetune_accuracy, best_accuracy, mask_updates}],
  // layers [{node, weight, weights, alive}] (unstructured), groups [{group,
  // channels_before, channels_after}] and skipped (structured).
  nlohmann::json apply(ir::Graph& model, const StageData& data) override;

 private:
  PruneSettings s_;
};

}  // namespace shrink::pipeline
