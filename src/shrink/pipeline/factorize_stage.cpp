#include "shrink/pipeline/factorize_stage.h"

#include <iostream>

#include "shrink/core/error.h"
#include "shrink/prune/unstructured.h"
#include "shrink/train/trainer.h"

namespace shrink::pipeline {

void FactorizeSettings::read(Fields& fields) {
  std::string rank;
  double ratio = 0, energy = 0;
  fields.read("method", f.method);
  fields.read("rank", rank);
  fields.read("ratio", ratio);
  fields.read("energy", energy);
  fields.read("vbmf_weaken", f.rule.vbmf_weaken);
  fields.read("layers", f.layers);
  fields.read("max_iterations", f.max_iterations);
  fields.read("als_tolerance", f.tolerance);
  fields.read("seed", f.seed);
  fields.read("tolerance", tolerance);
  fields.read("val_samples", val_samples);
  fields.read("finetune", finetune);
  fields.read("lr", lr);
  fields.read("batch", batch);
  fields.check(f.method == "svd" || f.method == "tucker" || f.method == "cp", "method",
               "expected svd, tucker or cp, got '" + f.method + "'");
  fields.check((!rank.empty()) + (ratio != 0) + (energy != 0) <= 1, "rank", "give one of rank, ratio and energy");
  search = rank == "search";
  if (!rank.empty() && !search) {
    try {
      double weaken = f.rule.vbmf_weaken;
      f.rule = factorize::parse_rank(rank);
      f.rule.vbmf_weaken = weaken;
    } catch (const Error& e) {
      fields.check(false, "rank", std::string("expected N, vbmf or search (") + e.what() + ")");
    }
  }
  if (ratio != 0) {
    fields.check(ratio > 1, "ratio", "expected a ratio above 1");
    f.rule.kind = factorize::RankRule::Kind::Ratio;
    f.rule.value = ratio;
  }
  if (energy != 0) {
    fields.check(energy > 0 && energy <= 1, "energy", "expected a fraction in (0, 1]");
    f.rule.kind = factorize::RankRule::Kind::Energy;
    f.rule.value = energy;
  }
  fields.check(tolerance >= 0, "tolerance", "expected accuracy points >= 0");
  fields.check(finetune >= 0, "finetune", "expected epochs >= 0");
  fields.check(lr > 0, "lr", "expected a positive learning rate");
  fields.check(batch > 0, "batch", "expected a positive batch size");
  fields.finish();
}

nlohmann::json FactorizeSettings::to_json() const {
  nlohmann::json j = {{"method", f.method}, {"seed", f.seed}, {"finetune", finetune}};
  if (search) {
    j.update({{"rank", "search"}, {"tolerance", tolerance}, {"val_samples", val_samples}});
  } else {
    switch (f.rule.kind) {
      case factorize::RankRule::Kind::Rank: j["rank"] = std::to_string(static_cast<int64_t>(f.rule.value)); break;
      case factorize::RankRule::Kind::Vbmf: j.update({{"rank", "vbmf"}, {"vbmf_weaken", f.rule.vbmf_weaken}}); break;
      case factorize::RankRule::Kind::Ratio: j["ratio"] = f.rule.value; break;
      case factorize::RankRule::Kind::Energy: j["energy"] = f.rule.value; break;
    }
  }
  if (!f.layers.empty()) j["layers"] = f.layers;
  if (f.method != "svd") j.update({{"max_iterations", f.max_iterations}, {"als_tolerance", f.tolerance}});
  if (finetune > 0) j.update({{"lr", lr}, {"batch", batch}});
  return j;
}

nlohmann::json FactorizeStage::apply(ir::Graph& g, const StageData& data) {
  SHRINK_CHECK(!needs_training_data() || data.train, "factorize: rank search and fine-tuning need training data");
  SHRINK_CHECK(s_.finetune == 0 || data.eval, "factorize: fine-tuning needs an evaluation split");
  std::vector<factorize::LayerResult> layers;
  if (s_.search) {
    const ir::Graph original = g.clone();  // the reference for unlabeled data
    data::Dataset val = data::random_subset(*data.train, s_.val_samples, s_.f.seed);
    factorize::SearchOptions so;
    so.tolerance = s_.tolerance;
    // Without labels: the top-1 agreement with the original model.
    so.accuracy = [&](const ir::Graph& m) {
      return val.labeled() ? train::evaluate(m, val).accuracy : train::compare(m, original, val).agreement;
    };
    if (data.progress) so.progress = [](const std::string& line) { std::cerr << "search: " << line << "\n"; };
    layers = factorize::factorize_search(g, s_.f, so);
  } else {
    layers = factorize::factorize(g, s_.f);
  }
  bool any = false;
  for (const auto& l : layers) any = any || l.skipped.empty();
  SHRINK_CHECK(any, "no layer was factorized",
               layers.empty() ? std::string(" (no Gemm, MatMul or Conv the method applies to)")
                              : "; first: '" + layers.front().node + "': " + layers.front().skipped);
  nlohmann::json j;
  for (const auto& l : layers) {
    nlohmann::json jl = {{"node", l.node}, {"op", l.op}};
    if (l.skipped.empty()) {
      jl.update({{"decomposition", l.method}, {"ranks", l.ranks}, {"weights_before", l.params_before},
                 {"weights_after", l.params_after}, {"macs_before", l.macs_before}, {"macs_after", l.macs_after},
                 {"relative_error", l.error}, {"nodes", l.nodes_after}});
    } else {
      jl["skipped"] = l.skipped;
    }
    j["layers"].push_back(jl);
  }
  if (data.eval && data.eval->size() > 0 && data.eval->labeled()) j["accuracy_before_finetune"] = train::evaluate(g, *data.eval).accuracy;
  if (s_.finetune > 0) {
    train::TrainOptions to;
    to.epochs = s_.finetune;
    to.lr = s_.lr;
    to.batch_size = s_.batch;
    to.seed = s_.f.seed;
    to.progress = data.progress;
    train::TrainResult tr = train::train(g, *data.train, *data.eval, to);
    j["finetune"] = {{"epochs", s_.finetune}, {"best_accuracy", tr.best_accuracy}, {"best_epoch", tr.best_epoch}};
  }
  return j;
}

void FinetuneSettings::read(Fields& f) {
  f.read("epochs", epochs);
  f.read("lr", lr);
  f.read("batch", batch);
  f.read("weight_decay", weight_decay);
  f.read("optimizer", optimizer);
  f.read("seed", seed);
  f.check(epochs > 0, "epochs", "expected a positive count");
  f.check(lr > 0, "lr", "expected a positive learning rate");
  f.check(batch > 0, "batch", "expected a positive batch size");
  f.check(weight_decay >= 0, "weight_decay", "expected a non-negative decay");
  f.check(optimizer == "sgd" || optimizer == "adam" || optimizer == "adamw", "optimizer", "expected sgd, adam or adamw");
  f.finish();
}

nlohmann::json FinetuneSettings::to_json() const {
  return {{"epochs", epochs}, {"lr", lr}, {"batch", batch}, {"weight_decay", weight_decay}, {"optimizer", optimizer},
          {"seed", seed}};
}

nlohmann::json FinetuneStage::apply(ir::Graph& g, const StageData& data) {
  SHRINK_CHECK(data.train && data.eval, "finetune: needs training data and an evaluation split");
  SHRINK_CHECK(data.train->labeled(), "finetune: the training data has no labels");
  // Pruned zeros stay zero: the zeros of each prunable weight that has any are re-applied
  // after every step (the same positions the pruning stage left).
  std::vector<std::pair<std::string, at::Tensor>> keep;
  for (const auto& w : prune::prunable_weights(g)) {
    const at::Tensor& t = g.initializer(w.weight)->tensor;
    at::Tensor nz = t != 0;
    if (nz.all().item<bool>()) continue;
    keep.emplace_back(w.weight, nz.to(t.scalar_type()));
  }
  train::TrainOptions to;
  to.epochs = s_.epochs;
  to.lr = s_.lr;
  to.batch_size = s_.batch;
  to.weight_decay = s_.weight_decay;
  to.optimizer = s_.optimizer;
  to.seed = s_.seed;
  to.progress = data.progress;
  if (!keep.empty())
    to.after_step = [&](int64_t, double) {
      at::NoGradGuard no_grad;
      for (auto& [name, mask] : keep) g.initializer(name)->tensor.mul_(mask);
    };
  train::TrainResult tr = train::train(g, *data.train, *data.eval, to);
  return {{"epochs", s_.epochs}, {"best_accuracy", tr.best_accuracy}, {"best_epoch", tr.best_epoch},
          {"masked_weights", keep.size()}};
}

}  // namespace shrink::pipeline
