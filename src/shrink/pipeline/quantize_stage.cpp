#include "shrink/pipeline/quantize_stage.h"

#include <algorithm>
#include <cstdio>

#include "shrink/core/error.h"
#include "shrink/data/loader.h"
#include "shrink/quantize/codebook.h"
#include "shrink/train/trainer.h"

namespace shrink::pipeline {
namespace {

bool one_of(const std::string& v, const std::vector<std::string>& allowed) {
  return std::find(allowed.begin(), allowed.end(), v) != allowed.end();
}

}  // namespace

void QuantizeSettings::read(Fields& f) {
  f.read("mode", q.mode);
  f.read("bits", q.bits);
  f.read("group_size", q.group_size);
  f.read("observer", q.observer);
  f.read("weight_observer", q.weight_observer);
  f.read("per_channel", q.per_channel);
  f.read("symmetric_activations", q.symmetric_activations);
  f.read("bins", q.bins);
  f.read("percentile", q.percentile);
  f.read("exclude", q.exclude_nodes);
  f.read("exclude_ops", q.exclude_ops);
  f.read("lsq", q.learnable_scales);
  f.read("bias_correction", q.bias_correction);
  f.read("equalize", q.equalize);
  f.read("smooth", q.smooth);
  f.read("per_token", q.per_token);
  f.read("calib_batches", calib_batches);
  f.read("batch", batch);
  f.read("epochs", epochs);
  f.read("lr", lr);
  f.read("sensitivity", sensitivity);
  f.read("max_drop", max_drop);
  f.read("val_samples", val_samples);
  f.read("seed", seed);
  f.check(one_of(q.mode, {"static", "dynamic", "qat", "weight-only", "fp16"}), "mode",
          "expected static, dynamic, qat, weight-only or fp16 (weight sharing is the codebook stage), got '" + q.mode + "'");
  f.check(one_of(q.observer, {"minmax", "moving_average", "entropy", "l2", "percentile", "mse"}), "observer",
          "expected minmax, moving_average, entropy, l2, percentile or mse, got '" + q.observer + "'");
  f.check(one_of(q.weight_observer, {"minmax", "mse"}), "weight_observer", "expected minmax or mse");
  f.check(q.bins > 0, "bins", "expected a positive count");
  f.check(q.percentile >= 50 && q.percentile <= 100, "percentile", "expected a percentile in [50, 100]");
  f.check(calib_batches > 0, "calib_batches", "expected a positive count");
  f.check(batch > 0, "batch", "expected a positive batch size");
  f.check(epochs > 0, "epochs", "expected a positive count");
  f.check(lr > 0, "lr", "expected a positive learning rate");
  f.check(val_samples > 0, "val_samples", "expected a positive count");
  f.finish();
  check();
}

nlohmann::json QuantizeSettings::to_json() const {
  nlohmann::json j = {{"mode", q.mode}, {"seed", seed}};
  if (!q.exclude_nodes.empty()) j["exclude"] = q.exclude_nodes;
  if (!q.exclude_ops.empty()) j["exclude_ops"] = q.exclude_ops;
  if (q.mode == "weight-only") j.update({{"bits", q.bits}, {"group_size", q.group_size}});
  if (q.mode == "dynamic") j["per_token"] = q.per_token;
  if (calibrated()) {
    j.update({{"observer", q.observer}, {"weight_observer", q.weight_observer}, {"per_channel", q.per_channel},
              {"symmetric_activations", q.symmetric_activations}, {"calib_batches", calib_batches}, {"batch", batch},
              {"bias_correction", q.bias_correction}, {"equalize", q.equalize}});
    if (q.observer == "entropy" || q.observer == "l2") j["bins"] = q.bins;
    if (q.observer == "percentile") j["percentile"] = q.percentile;
    if (max_drop >= 0) j.update({{"max_drop", max_drop}, {"val_samples", val_samples}});
    if (q.smooth >= 0) j["smooth"] = q.smooth;
  }
  if (q.mode == "qat") j.update({{"epochs", epochs}, {"lr", lr}, {"lsq", q.learnable_scales}});
  return j;
}

void QuantizeSettings::check(bool cli) const {
  SHRINK_CHECK(q.bits == 8 || q.bits == 4, setting_name("bits", cli), ": ", q.mode, " mode takes 8 or 4, got ", q.bits,
               " (2 to 8 with ", cli ? "--mode codebook" : "the codebook stage", ")");
  SHRINK_CHECK(q.smooth < 0 || (q.smooth <= 1 && (q.mode == "static" || q.mode == "dynamic" || q.mode == "qat")),
               setting_name("smooth", cli), ": SmoothQuant's alpha is in [0, 1] and applies to static, dynamic or qat mode, got ",
               q.smooth, " with ", q.mode);
  SHRINK_CHECK(!q.per_token || q.mode == "dynamic", setting_name("per_token", cli), ": only with dynamic mode, got ", q.mode);
  SHRINK_CHECK(!(sensitivity || max_drop >= 0) || q.mode == "static", setting_name(max_drop >= 0 ? "max_drop" : "sensitivity", cli),
               ": only with static mode");
}

QuantizeStage::QuantizeStage(QuantizeSettings s) : s_(std::move(s)) { s_.check(); }

nlohmann::json QuantizeStage::apply(ir::Graph& g, const StageData& data) {
  QuantizeSettings o = s_;
  const bool calibrated = o.calibrated();
  SHRINK_CHECK(!calibrated || data.train, "quantize: ", o.q.mode, " mode calibrates on training data; none was given");
  SHRINK_CHECK(o.q.mode != "qat" || data.eval, "quantize: qat evaluates every epoch; no evaluation split was given");
  if (calibrated) train::check_input_fits(g, *data.train);
  nlohmann::json qat_log;
  o.q.train = [&](ir::Graph& fake) {
    train::TrainOptions to;
    to.epochs = o.epochs;
    to.lr = o.lr;
    to.batch_size = o.batch;
    to.seed = o.seed;
    to.progress = data.progress;
    train::TrainResult tr = train::train(fake, *data.train, *data.eval, to);
    qat_log = {{"epochs", o.epochs}, {"lsq", o.q.learnable_scales}, {"best_accuracy", tr.best_accuracy},
               {"best_epoch", tr.best_epoch}};
  };
  const ir::Graph original = g.clone();
  // A calibration source: a fresh seeded loader over the training images per quantization.
  data::LoaderOptions calibration_options = calibrated ? train::loader_options_for(g, *data.train) : data::LoaderOptions{};
  quantize::CalibrationSource calibration = [&]() -> std::function<bool(std::vector<at::Tensor>&)> {
    data::LoaderOptions lo = calibration_options;
    lo.batch_size = o.batch;
    lo.seed = o.seed;
    auto loader = std::make_shared<data::DataLoader>(*data.train, lo);
    loader->start_epoch(0);
    auto taken = std::make_shared<int64_t>(0);
    int64_t limit = o.calib_batches;
    return [loader, taken, limit](std::vector<at::Tensor>& inputs) {
      data::Batch b;
      if (*taken >= limit || !loader->next(b)) return false;
      ++*taken;
      inputs = {b.images};
      return true;
    };
  };
  nlohmann::json j;
  if (o.sensitivity || o.max_drop >= 0) {
    data::Dataset val = data::random_subset(*data.train, o.val_samples, o.seed + 1);
    // Without labels, "accuracy" is the top-1 agreement with the float model.
    auto accuracy = [&](const ir::Graph& graph) {
      return val.labeled() ? train::evaluate(graph, val).accuracy : train::compare(graph, original, val).agreement;
    };
    quantize::FallbackResult f = quantize::sensitivity_fallback(g, o.q, calibration, accuracy, o.max_drop);
    nlohmann::json s = {{"validation_samples", val.size()}, {"by", val.labeled() ? "accuracy" : "agreement"},
                        {"float_accuracy", f.float_accuracy}, {"quantized_accuracy", f.quantized_accuracy},
                        {"final_accuracy", f.final_accuracy}, {"kept_float", f.kept_float}, {"max_drop", o.max_drop}};
    for (const auto& l : f.layers) s["layers"].push_back({{"node", l.node}, {"op", l.op}, {"accuracy_float_alone", l.accuracy}});
    j["sensitivity"] = s;
    o.q.exclude_nodes.insert(o.q.exclude_nodes.end(), f.kept_float.begin(), f.kept_float.end());
  }
  quantize::QuantizeResult r = quantize::quantize(g, o.q, calibrated ? calibration() : nullptr);
  j.update({{"calibration_batches", r.calibration_batches}, {"activations", r.activations.size()}});
  if (!qat_log.is_null()) j["qat"] = qat_log;
  if (o.q.smooth >= 0) {
    j["smoothed"] = nlohmann::json::array();
    for (const auto& sm : r.smoothed)
      j["smoothed"].push_back({{"norm", sm.norm}, {"layers", sm.layers}, {"min_scale", sm.min_scale},
                               {"max_scale", sm.max_scale}, {"activation_range_before", sm.act_range_before},
                               {"activation_range_after", sm.act_range_after}});
  }
  if (o.q.equalize) {
    j["equalized"] = nlohmann::json::array();
    for (const auto& [a, b] : r.equalized) j["equalized"].push_back({a, b});
  }
  for (const auto& l : r.layers) {
    nlohmann::json jl = {{"node", l.node}, {"op", l.op}};
    if (l.skipped.empty()) {
      jl.update({{"weight_bytes_before", l.weight_bytes_before}, {"weight_bytes_after", l.weight_bytes_after}});
    } else {
      jl["skipped"] = l.skipped;
    }
    j["layers"].push_back(jl);
  }
  return j;
}

void CodebookSettings::read(Fields& f) {
  f.read("bits", bits);
  f.read("layer_bits", layer_bits);
  f.read("exclude", exclude);
  f.read("exclude_ops", exclude_ops);
  f.read("finetune", finetune);
  f.read("lr", lr);
  f.read("batch", batch);
  f.read("seed", seed);
  f.read("auto_bits_drop", auto_bits_drop);
  f.check(auto_bits_drop >= 0, "auto_bits_drop", "expected accuracy points >= 0");
  f.check(finetune >= 0, "finetune", "expected epochs >= 0");
  f.check(lr > 0, "lr", "expected a positive learning rate");
  f.check(batch > 0, "batch", "expected a positive batch size");
  f.finish();
  check();
}

nlohmann::json CodebookSettings::to_json() const {
  nlohmann::json j = {{"bits", bits}, {"finetune", finetune}, {"seed", seed}};
  if (!layer_bits.empty()) j["layer_bits"] = layer_bits;
  if (!exclude.empty()) j["exclude"] = exclude;
  if (!exclude_ops.empty()) j["exclude_ops"] = exclude_ops;
  if (finetune > 0) j.update({{"lr", lr}, {"batch", batch}});
  if (auto_bits_drop > 0) j["auto_bits_drop"] = auto_bits_drop;
  return j;
}

void CodebookSettings::check(bool cli) const {
  SHRINK_CHECK(bits >= 2 && bits <= 8, setting_name("bits", cli), ": codebook mode takes 2 to 8 bits, got ", bits);
  for (const auto& [node, b] : layer_bits)
    SHRINK_CHECK(b >= 2 && b <= 8, setting_name("layer_bits", cli), ": ", node, " takes 2 to 8 bits, got ", b);
}

CodebookStage::CodebookStage(CodebookSettings s) : s_(std::move(s)) { s_.check(); }

namespace {

// Per layer, the fewest bits whose codebook (that layer alone shared, the rest float)
// keeps accuracy within `max_drop` points of the unshared model; written into
// co.layer_bits for the layers it does not name already. A layer that no width keeps
// within the drop gets co.bits.
nlohmann::json choose_layer_bits(const ir::Graph& g, quantize::CodebookOptions& co, double max_drop, const StageData& data) {
  SHRINK_CHECK(data.eval && data.eval->size() > 0 && data.eval->labeled(),
               "codebook auto_bits_drop: needs a labeled evaluation split");
  const data::Dataset sample = data::random_subset(*data.eval, 2000, 0);
  const double dense = train::evaluate(g, sample).accuracy;
  std::vector<std::string> layers;
  for (const auto& node : g.nodes()) {
    if (std::find(co.ops.begin(), co.ops.end(), node->op_type) == co.ops.end() || node->inputs().size() < 2) continue;
    if (std::find(co.exclude_nodes.begin(), co.exclude_nodes.end(), node->name) != co.exclude_nodes.end()) continue;
    if (co.layer_bits.count(node->name)) continue;
    const ir::Value* v = node->input(1);
    const ir::Initializer* init = v ? g.initializer(v->name) : nullptr;
    if (init && init->tensor.is_floating_point()) layers.push_back(node->name);
  }
  nlohmann::json report = {{"samples", sample.size()}, {"dense_accuracy", dense}, {"max_drop", max_drop}};
  std::map<std::string, int> chosen;
  for (const std::string& layer : layers) {
    int pick = co.bits;
    for (int bits = 2; bits < co.bits; ++bits) {
      ir::Graph trial = g.clone();
      quantize::CodebookOptions one = co;
      one.layer_bits = {{layer, bits}};
      one.exclude_nodes.clear();
      for (const std::string& other : layers)
        if (other != layer) one.exclude_nodes.push_back(other);
      for (const auto& [named, b] : co.layer_bits) one.exclude_nodes.push_back(named);
      quantize::WeightSharing share(trial, one);
      const double acc = train::evaluate(trial, sample).accuracy;
      report["layers"][layer][std::to_string(bits)] = acc;
      if ((dense - acc) * 100 <= max_drop) {
        pick = bits;
        break;
      }
    }
    chosen[layer] = pick;
  }
  for (const auto& [layer, bits] : chosen) co.layer_bits[layer] = bits;
  report["chosen"] = chosen;
  return report;
}

}  // namespace

nlohmann::json CodebookStage::apply(ir::Graph& g, const StageData& data) {
  const CodebookSettings& o = s_;
  if (o.finetune > 0) {
    SHRINK_CHECK(data.train && data.eval, "codebook: fine-tuning needs training and evaluation data");
    SHRINK_CHECK(data.train->labeled(), "codebook fine-tuning: the training data has no labels (fine-tuning needs them)");
    train::check_input_fits(g, *data.train);
  }
  quantize::CodebookOptions co;
  co.bits = o.bits;
  co.exclude_nodes = o.exclude;
  co.layer_bits = o.layer_bits;
  for (const std::string& op : o.exclude_ops) co.ops.erase(std::remove(co.ops.begin(), co.ops.end(), op), co.ops.end());
  nlohmann::json j;
  if (o.auto_bits_drop > 0) j["auto_bits"] = choose_layer_bits(g, co, o.auto_bits_drop, data);
  quantize::WeightSharing sharing(g, co);
  if (o.finetune > 0) {
    double shared = train::evaluate(g, *data.eval).accuracy;
    if (data.progress) std::fprintf(stderr, "shared weights before fine-tuning: %.2f%%\n", 100 * shared);
    train::TrainOptions to;
    to.epochs = o.finetune;
    to.lr = o.lr;
    to.weight_decay = 0;  // a decay per weight would pull a centroid by its cluster's size
    to.batch_size = o.batch;
    to.seed = o.seed;
    to.progress = data.progress;
    to.after_step = [&](int64_t, double) { sharing.after_step(); };
    train::TrainResult tr = train::train(g, *data.train, *data.eval, to);
    sharing.finish();
    j["finetune"] = {{"epochs", o.finetune}, {"lr", o.lr}, {"accuracy_before", shared}, {"best_accuracy", tr.best_accuracy},
                     {"best_epoch", tr.best_epoch}};
  }
  for (const auto& l : sharing.layers())
    j["layers"].push_back({{"node", l.node}, {"op", l.op}, {"weight", l.weight}, {"weights", l.weights},
                           {"nonzeros", l.nonzeros}, {"entries", l.entries}, {"bits", l.bits},
                           {"relative_error", l.relative_error}, {"note", l.note}});
  return j;
}

}  // namespace shrink::pipeline
