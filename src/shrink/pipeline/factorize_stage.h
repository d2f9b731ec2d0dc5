// The low-rank stage: SVD, Tucker-2 and CP factorization with a rank rule (a rank,
// vbmf, an energy, a ratio, or a per-layer search on validation accuracy), then
// optional fine-tuning (factorize/factorize.h).
#pragma once
#include <string>
#include <vector>

#include "shrink/factorize/factorize.h"
#include "shrink/pipeline/stage.h"

namespace shrink::pipeline {

struct FactorizeSettings {
  factorize::FactorizeOptions f;  // method, rule, layers, ALS limits, seed
  bool search = false;            // rank: search (per layer, within `tolerance` points)
  double tolerance = 1.0;
  int64_t val_samples = 5000;     // search: seeded subset of the training data
  int finetune = 0;
  double lr = 0.01;
  int64_t batch = 128;

  void read(Fields& f);
  nlohmann::json to_json() const;
};

class FactorizeStage : public Stage {
 public:
  explicit FactorizeStage(FactorizeSettings s) : s_(std::move(s)) {}
  std::string name() const override { return "factorize"; }
  nlohmann::json settings() const override { return s_.to_json(); }
  bool needs_training_data() const override { return s_.search || s_.finetune > 0; }
  // Report: layers [{node, op, decomposition, ranks, weights_before, weights_after,
  // macs_before, macs_after, relative_error, nodes | skipped}], accuracy_before_finetune
  // (on the evaluation split), finetune.
  // Fails when no layer was factorized.
  nlohmann::json apply(ir::Graph& model, const StageData& data) override;

 private:
  FactorizeSettings s_;
};

// Fine-tuning alone (a recipe's `finetune` stage): SGD, cosine, keep-best on the
// evaluation split; weights that are exactly zero in a pruned layer stay zero.
struct FinetuneSettings {
  int epochs = 3;
  double lr = 0.01;
  int64_t batch = 128;
  double weight_decay = 5e-4;
  std::string optimizer = "sgd";
  uint64_t seed = 0;

  void read(Fields& f);
  nlohmann::json to_json() const;
};

class FinetuneStage : public Stage {
 public:
  explicit FinetuneStage(FinetuneSettings s) : s_(std::move(s)) {}
  std::string name() const override { return "finetune"; }
  nlohmann::json settings() const override { return s_.to_json(); }
  bool needs_training_data() const override { return true; }
  nlohmann::json apply(ir::Graph& model, const StageData& data) override;

 private:
  FinetuneSettings s_;
};

}  // namespace shrink::pipeline
