#include "shrink/pipeline/prune_stage.h"

#include <iostream>

#include "shrink/core/error.h"
#include "shrink/core/parse.h"
#include "shrink/prune/gradual.h"
#include "shrink/prune/structured.h"
#include "shrink/prune/unstructured.h"
#include "shrink/train/trainer.h"

namespace shrink::pipeline {

void PruneSettings::read(Fields& f) {
  f.read("method", method);
  f.read("amount", amount);
  f.read("schedule", schedule);
  f.read("finetune", finetune);
  f.read("lr", lr);
  f.read("batch", batch);
  f.read("layers", layers);
  f.read("ignore", ignore);
  f.read("min_keep", min_keep);
  f.read("seed", seed);
  f.read("soft", soft);
  f.read("norm", norm);
  {
    // A multiple, or "auto": `shrink compress` times each multiple and picks (0 here).
    std::string rt = std::to_string(round_to == 0 ? 1 : round_to);
    if (round_to == 0) rt = "auto";
    f.read("round_to", rt);
    if (rt == "auto") {
      round_to = 0;
    } else {
      try {
        round_to = parse_int(rt, "round_to", 1);
      } catch (const Error&) {
        f.check(false, "round_to", "expected a positive multiple or auto, got '" + rt + "'");
      }
    }
  }
  f.read("ranking", ranking);
  f.read("embedding", embedding);
  f.read("max_ratio", max_ratio);
  f.read("layer_amount", layer_amount);
  f.read("taylor_batches", taylor_batches);
  f.read("agp_end", agp_end);
  f.read("agp_every", agp_every);
  const std::vector<std::string> methods = {"l1", "random", "global", "ln-structured", "slim", "taylor", "random-structured"};
  f.check(std::find(methods.begin(), methods.end(), method) != methods.end(), "method",
          "expected l1, random, global, ln-structured, slim, taylor or random-structured, got '" + method + "'");
  f.check(amount >= 0 && amount < 1, "amount", "expected a fraction in [0, 1)");
  f.check(finetune >= 0, "finetune", "expected epochs >= 0");
  f.check(lr > 0, "lr", "expected a positive learning rate");
  f.check(batch > 0, "batch", "expected a positive batch size");
  f.check(norm == 1 || norm == 2, "norm", "expected 1 or 2");
  f.check(round_to > 0 || structured(), "round_to", "auto is for structured methods (whole channels)");
  f.check(ranking == "uniform" || ranking == "global", "ranking", "expected uniform or global");
  f.check(max_ratio >= 0 && max_ratio <= 1, "max_ratio", "expected a fraction in [0, 1]");
  f.check(min_keep >= 0 && min_keep < 1, "min_keep", "expected a fraction in [0, 1)");
  f.check(taylor_batches > 0, "taylor_batches", "expected a positive count");
  f.check(agp_end >= 0.01 && agp_end <= 1, "agp_end", "expected a fraction in [0.01, 1]");
  f.check(agp_every > 0, "agp_every", "expected a positive step count");
  f.finish();
  check();
}

nlohmann::json PruneSettings::to_json() const {
  nlohmann::json j = {{"method", method}, {"amount", amount}, {"schedule", schedule}, {"finetune", finetune},
                      {"lr", lr}, {"batch", batch}, {"seed", seed}, {"soft", soft}};
  if (!layers.empty()) j["layers"] = layers;
  if (!ignore.empty()) j["ignore"] = ignore;
  if (method == "global") j["min_keep"] = min_keep;
  if (structured()) {
    j.update({{"ranking", ranking}, {"max_ratio", max_ratio}, {"embedding", embedding}});
    if (round_to == 0) j["round_to"] = "auto";
    else j["round_to"] = round_to;
    if (method == "ln-structured") j["norm"] = norm;
    if (!layer_amount.empty()) j["layer_amount"] = layer_amount;
    if (method == "taylor") j["taylor_batches"] = taylor_batches;
  }
  if (schedule == "agp") j.update({{"agp_end", agp_end}, {"agp_every", agp_every}});
  return j;
}

bool PruneSettings::structured() const {
  return method == "ln-structured" || method == "slim" || method == "taylor" || method == "random-structured";
}

int PruneSettings::rounds(bool cli) const {
  if (schedule == "oneshot" || schedule == "agp") return 1;
  const std::string prefix = "iterative:";
  const std::string key = setting_name("schedule", cli);
  if (schedule.rfind(prefix, 0) == 0)
    return static_cast<int>(parse_int(schedule.substr(prefix.size()), key + " iterative:N", 1, 1000));
  fail(key, ": '", schedule, "' is not oneshot, iterative:N (N >= 1 rounds) or agp");
}

void PruneSettings::check(bool cli) const {
  auto key = [cli](const char* name) { return setting_name(name, cli); };
  SHRINK_CHECK(amount >= 0.0 && amount < 1.0, key("amount"), " must be in [0, 1), got ", amount);
  rounds(cli);
  const bool agp = schedule == "agp";
  SHRINK_CHECK(!structured() || !agp, key("schedule"), " agp is for unstructured methods (masks); use iterative:N");
  SHRINK_CHECK(!structured() || !soft, key("soft"), " keeps masks; structured pruning removes channels");
  SHRINK_CHECK(structured() || (layer_amount.empty() && ranking == "uniform" && max_ratio == 1.0 && !embedding),
               key("layer_amount"), ", ", key("ranking"), ", ", key("max_ratio"), " and ", key("embedding"),
               " are for structured methods");
  SHRINK_CHECK(!agp || finetune > 0, key("schedule"), " agp prunes during training: give ", key("finetune"), " EPOCHS");
}

PruneStage::PruneStage(PruneSettings s) : s_(std::move(s)) { s_.check(); }

nlohmann::json PruneStage::apply(ir::Graph& g, const StageData& data) {
  const PruneSettings& o = s_;
  const int rounds = o.rounds();
  const bool agp = o.schedule == "agp";
  const bool structured = o.structured();
  SHRINK_CHECK(o.round_to > 0, "prune: round_to auto is chosen by shrink compress (it times each multiple); give a number");
  SHRINK_CHECK(!needs_training_data() || data.train, "prune: fine-tuning and Taylor importance need training data");
  SHRINK_CHECK(o.finetune == 0 || data.eval, "prune: fine-tuning needs an evaluation split");

  prune::StructuredOptions so;
  so.method = o.method == "ln-structured" ? (o.norm == 1 ? "l1" : "l2")
              : o.method == "slim" || o.method == "taylor" ? o.method
                                                           : "random";
  so.round_to = o.round_to;
  so.ignored = o.ignore;
  so.layers = o.layers;
  so.seed = o.seed;
  so.global = o.ranking == "global";
  so.max_ratio = o.max_ratio;
  so.embedding = o.embedding;
  std::map<std::string, std::pair<int64_t, int64_t>> channels;  // group -> (first before, last after)
  std::vector<std::string> skipped;

  prune::UnstructuredOptions po;
  po.method = o.method;
  po.layers = o.layers;
  po.ignored = o.ignore;
  po.min_keep = o.min_keep;
  po.seed = o.seed;
  po.amount = prune::amount_per_round(o.amount, rounds);
  po.soft = o.soft || o.finetune > 0;  // fine-tuning trains through the masks
  nlohmann::json round_log = nlohmann::json::array();
  std::vector<prune::LayerReport> last;
  for (int r = 0; r < rounds; ++r) {
    std::unique_ptr<prune::GradualPruner> gradual;
    if (structured) {
      so.amount = po.amount;
      so.layer_amounts.clear();
      for (const auto& [name, amt] : o.layer_amount) so.layer_amounts[name] = prune::amount_per_round(amt, rounds);
      if (so.method == "taylor")
        so.gradients = [&](const prune::GradientVisitor& visit) {
          train::for_each_gradient(g, *data.train, o.taylor_batches, o.batch, o.seed + r, visit);
        };
      prune::StructuredReport sr = prune::prune_structured(g, so);
      for (const auto& gr : sr.pruned) {
        if (!channels.count(gr.name)) channels[gr.name].first = gr.before;
        channels[gr.name].second = gr.after;
      }
      skipped = sr.skipped;
    } else if (agp) {
      gradual = std::make_unique<prune::GradualPruner>(g, po, 0.0, o.agp_end * o.finetune, o.agp_every);
    } else {
      last = prune::prune_unstructured(g, po);
    }
    nlohmann::json jr = {{"round", r + 1}, {"amount", po.amount}};
    if (o.finetune > 0) {
      train::TrainOptions to;
      to.epochs = o.finetune;
      to.lr = o.lr;
      to.batch_size = o.batch;
      to.seed = o.seed + r;
      to.progress = data.progress;
      if (gradual) {
        to.keep_best = false;  // an early epoch's weights would be less sparse
        to.after_step = [&](int64_t step, double epoch) { gradual->after_step(step, epoch); };
      }
      train::TrainResult tr = train::train(g, *data.train, *data.eval, to);
      jr["finetune_accuracy"] = tr.history.empty() ? 0.0 : tr.history.back().test_accuracy;
      jr["best_accuracy"] = tr.best_accuracy;
    }
    if (gradual) {
      jr["mask_updates"] = gradual->updates();
      for (const auto& w : prune::prunable_weights(g)) {
        if (w.mask.empty()) continue;
        at::Tensor m = prune::alive_mask(g, w);
        last.push_back({w.node->name, w.weight, m.numel(), m.numel(), m.sum().item<int64_t>()});
      }
    }
    round_log.push_back(jr);
    if (data.progress && rounds > 1)
      std::cerr << "round " << r + 1 << "/" << rounds << ": pruned " << po.amount * 100 << "% of the alive weights\n";
  }
  if (!o.soft && !structured) prune::make_permanent(g);

  nlohmann::json j = {{"rounds", round_log}};
  for (const auto& l : last)
    j["layers"].push_back({{"node", l.node}, {"weight", l.weight}, {"weights", l.total}, {"alive", l.alive_after}});
  for (const auto& [name, bc] : channels)
    j["groups"].push_back({{"group", name}, {"channels_before", bc.first}, {"channels_after", bc.second}});
  if (structured) j["skipped"] = skipped;
  return j;
}

}  // namespace shrink::pipeline
