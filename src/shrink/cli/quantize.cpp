// shrink quantize MODEL -o OUT --mode static|dynamic [--calib-batches 32] [--observer ...]
//   [--per-channel|--per-tensor]: int8 quantization exported as QDQ ONNX, with a per-layer
//   report and the model summary (parameters, bytes on disk, latency, accuracy).
#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "shrink/cli/commands.h"
#include "shrink/cli/validators.h"
#include "shrink/cli/data_options.h"
#include "shrink/cli/model_summary.h"
#include "shrink/core/error.h"
#include "shrink/data/loader.h"
#include "shrink/onnx/export.h"
#include "shrink/onnx/import.h"
#include "shrink/ops/int8.h"
#include "shrink/passes/pass.h"
#include "shrink/quantize/codebook.h"
#include "shrink/quantize/quantize.h"
#include "shrink/train/trainer.h"

namespace shrink::cli {

void add_quantize_command(CLI::App& app) {
  struct Options {
    std::string input, output, exclude, exclude_ops;
    int64_t calib_batches = 32, batch = 64;
    int epochs = 3, finetune = 0, bits = 0;
    std::string layer_bits;
    double lr = 0.01, max_drop = -1;
    int64_t val_samples = 5000;
    bool sensitivity = false;
    uint64_t seed = 0;
    bool per_tensor = false, per_channel = false, json = false, no_eval = false, no_latency = false;
    quantize::QuantizeOptions q;
    DataOptions data;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("quantize", "Quantize a model to int8 and export it as QDQ ONNX");
  cmd->add_option("model", opt->input, "ONNX model")->required();
  cmd->add_option("-o,--output", opt->output, "quantized model (ONNX, QDQ)")->required();
  cmd->add_option("--mode", opt->q.mode,
                  "static (weights and activations int8, activation ranges calibrated on training images) or "
                  "dynamic (int8 weights; activations quantized per batch at run time) or qat (static, then "
                  "quantization-aware training with fake quantization), weight-only (Gemm/MatMul weights int8 or "
                  "4-bit grouped; float compute), fp16 (parameters stored as float16) or codebook (weight sharing: "
                  "per-layer k-means over the non-zero weights, stored as codes into a codebook; Deep Compression)")
      ->check(CLI::IsMember({"static", "dynamic", "qat", "weight-only", "fp16", "codebook"}))
      ->capture_default_str();
  cmd->add_option("--calib-batches", opt->calib_batches, "static: calibration batches (seeded sample of the training set)")
      ->check(positive())
      ->capture_default_str();
  cmd->add_option("--layer-bits", opt->layer_bits,
                  "codebook: per-layer bits, comma-separated NAME=BITS (node names; Deep Compression used 8 for "
                  "convolutions and 5 for fully connected layers), the rest take --bits");
  cmd->add_option("--bits", opt->bits,
                  "weight-only: 8 (per channel, the default) or 4 (per group, two per byte); codebook: 2 to 8 bits "
                  "per code (default 4: 16 shared values per layer, zero one of them in a pruned layer)");
  cmd->add_option("--finetune", opt->finetune,
                  "codebook: epochs of centroid fine-tuning (each centroid moved by its weights' summed gradients)")
      ->check(non_negative());
  cmd->add_option("--group-size", opt->q.group_size, "weight-only 4-bit: weights per scale along the reduced axis")
      ->capture_default_str();
  cmd->add_option("--epochs", opt->epochs, "qat: training epochs")->check(positive())->capture_default_str();
  CLI::Option* lr_flag = cmd->add_option(
      "--lr", opt->lr, "qat and codebook --finetune: learning rate (SGD, momentum 0.9, cosine; default 0.01 for qat, "
                       "0.0001 for codebook, whose centroid steps sum over thousands of weights)")
      ->check(positive());
  cmd->add_flag("--equalize", opt->q.equalize,
                "cross-layer equalization first: consecutive layers' channel ranges balanced (ReLU or nothing between)");
  cmd->add_flag("--bias-correction", opt->q.bias_correction,
                "static/qat: shift each bias by -(W_q - W) E[x] (calibration means; Nagel et al. 2019)");
  cmd->add_flag("--lsq", opt->q.learnable_scales, "qat: learn the scales (LSQ, Esser et al. 2020)");
  cmd->add_option("--batch", opt->batch, "calibration (and qat training) batch size")->check(positive())->capture_default_str();
  cmd->add_option("--observer", opt->q.observer,
                  "activation ranges: minmax, moving_average, entropy (KL, TensorRT), l2 (PyTorch's histogram search), "
                  "percentile, mse")
      ->check(CLI::IsMember({"minmax", "moving_average", "entropy", "l2", "percentile", "mse"}))
      ->capture_default_str();
  cmd->add_option("--weight-observer", opt->q.weight_observer, "weight ranges: minmax or mse")
      ->check(CLI::IsMember({"minmax", "mse"}))
      ->capture_default_str();
  auto* pc = cmd->add_flag("--per-channel", opt->per_channel, "one weight scale per output channel (the default)");
  auto* pt = cmd->add_flag("--per-tensor", opt->per_tensor, "one weight scale per layer");
  pc->excludes(pt);
  cmd->add_flag("--symmetric-activations", opt->q.symmetric_activations, "int8 symmetric activations (default uint8 affine)");
  cmd->add_option("--bins", opt->q.bins, "histogram observers: bins")->check(positive())->capture_default_str();
  cmd->add_option("--percentile", opt->q.percentile, "percentile observer: the upper percentile")
      ->check(range(50.0, 100.0))
      ->capture_default_str();
  cmd->add_option("--exclude", opt->exclude, "comma-separated node names left in float");
  cmd->add_option("--exclude-ops", opt->exclude_ops, "comma-separated op types left in float (e.g. Gemm)");
  cmd->add_flag("--sensitivity", opt->sensitivity,
                "static: validation accuracy with each layer alone left float (a table, most sensitive first)");
  cmd->add_option("--max-drop", opt->max_drop,
                  "static: keep the most sensitive layers float until the validation accuracy is within this many points "
                  "of the float model's")
      ->check(non_negative());
  cmd->add_option("--val-samples", opt->val_samples, "--sensitivity / --max-drop: training images (seeded subset) used as validation")
      ->check(positive())
      ->capture_default_str();
  cmd->add_option("--seed", opt->seed, "seed of the calibration sample")->capture_default_str();
  cmd->add_flag("--no-eval", opt->no_eval, "skip the test-set accuracy before and after");
  cmd->add_flag("--no-latency", opt->no_latency, "skip timing the model before and after");
  opt->data.add_to(cmd);
  cmd->add_flag("--json", opt->json, "print a JSON summary");
  // --mode codebook: weight sharing, optional centroid fine-tuning, export as codes.
  auto run_codebook = [](Options& o) {
    ir::Graph g = onnx_io::import_model(o.input);
    o.data.apply_to(g);
    data::Dataset test_set, train_set;
    if (!o.no_eval || o.finetune > 0) test_set = o.data.load(false, &g);
    if (o.finetune > 0) {
      train_set = o.data.load(true, &g);
      SHRINK_CHECK(train_set.labeled(), "--finetune: the training data has no labels (fine-tuning needs them)");
      train::check_input_fits(g, train_set);
    }
    const ir::Graph original = g.clone();
    Snapshot before = snapshot_of(g, o.input, !o.no_latency);
    if (!o.no_eval) measure_before(before, g, test_set);
    quantize::CodebookOptions co;
    co.bits = o.bits ? o.bits : 4;
    co.exclude_nodes = comma_list(o.exclude);
    for (const std::string& item : comma_list(o.layer_bits)) {
      const size_t eq = item.find('=');
      SHRINK_CHECK(eq != std::string::npos && eq > 0, "--layer-bits: '", item, "' is not NAME=BITS");
      const double bits = parse_real(item.substr(eq + 1), "--layer-bits " + item.substr(0, eq), 2, 8);
      SHRINK_CHECK(bits == static_cast<int>(bits), "--layer-bits ", item.substr(0, eq), ": bits must be a whole number, got ",
                   item.substr(eq + 1));
      co.layer_bits[item.substr(0, eq)] = static_cast<int>(bits);
    }
    for (const std::string& op : comma_list(o.exclude_ops)) co.ops.erase(std::remove(co.ops.begin(), co.ops.end(), op), co.ops.end());
    quantize::WeightSharing sharing(g, co);
    nlohmann::json tuning;
    if (o.finetune > 0) {
      double shared = train::evaluate(g, test_set).accuracy;
      if (!o.json) std::printf("shared weights before fine-tuning: test %.2f%%\n", 100 * shared);
      train::TrainOptions to;
      to.epochs = o.finetune;
      to.lr = o.lr;
      to.weight_decay = 0;  // a decay per weight would pull a centroid by its cluster's size
      to.batch_size = o.batch;
      to.seed = o.seed;
      to.progress = !o.json;
      to.after_step = [&](int64_t, double) { sharing.after_step(); };
      train::TrainResult tr = train::train(g, train_set, test_set, to);
      sharing.finish();
      tuning = {{"epochs", o.finetune}, {"lr", o.lr}, {"accuracy_before", shared}, {"best_accuracy", tr.best_accuracy},
                {"best_epoch", tr.best_epoch}};
    }
    onnx_io::export_model(g, o.output);
    Snapshot after = snapshot_of(g, o.output, !o.no_latency);
    if (!o.no_eval) {
      ir::Graph deployed = onnx_io::import_model(o.output);
      passes::make_pipeline("inference").run(deployed);
      measure_after(after, deployed, original, test_set);
    }
    nlohmann::json j = {{"input", o.input}, {"output", o.output}, {"mode", "codebook"}, {"bits", co.bits},
                        {"before", snapshot_json(before)}, {"after", snapshot_json(after)}};
    if (!tuning.is_null()) j["finetune"] = tuning;
    for (const auto& l : sharing.layers())
      j["layers"].push_back({{"node", l.node}, {"op", l.op}, {"weight", l.weight}, {"weights", l.weights},
                             {"nonzeros", l.nonzeros}, {"entries", l.entries}, {"bits", l.bits}, {"relative_error", l.relative_error},
                             {"note", l.note}});
    if (o.json) {
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::printf("%-28s %-8s %10s %10s %5s %8s %10s  %s\n", "layer", "op", "weights", "non-zeros", "bits", "entries",
                "rel.error", "");
    for (const auto& l : sharing.layers())
      std::printf("%-28s %-8s %10lld %10lld %5d %8lld %10.4f  %s\n", l.node.c_str(), l.op.c_str(),
                  static_cast<long long>(l.weights), static_cast<long long>(l.nonzeros), l.bits,
                  static_cast<long long>(l.entries), l.relative_error, l.note.c_str());
    print_before_after(before, after);
    std::printf("wrote %s (shrink info %s: the per-layer storage)\n", o.output.c_str(), o.output.c_str());
  };
  cmd->callback([opt, lr_flag, run_codebook] {
    Options& o = *opt;
    if (o.q.mode == "codebook") {
      if (!lr_flag->count()) o.lr = 1e-4;
      return run_codebook(o);
    }
    SHRINK_CHECK(o.bits == 0 || o.bits == 8 || o.bits == 4, "--bits: ", o.q.mode == "weight-only" ? "weight-only" : o.q.mode,
                 " mode takes 8 or 4, got ", o.bits, " (2 to 8 with --mode codebook)");
    SHRINK_CHECK(o.finetune == 0, "--finetune: only with --mode codebook (qat trains with --epochs)");
    SHRINK_CHECK(o.layer_bits.empty(), "--layer-bits: only with --mode codebook");
    if (o.bits) o.q.bits = o.bits;
    o.q.per_channel = !o.per_tensor;
    o.q.exclude_nodes = comma_list(o.exclude);
    o.q.exclude_ops = comma_list(o.exclude_ops);
    ir::Graph g = onnx_io::import_model(o.input);
    o.data.apply_to(g);
    data::Dataset test_set, train_set;
    if (!o.no_eval) test_set = o.data.load(false, &g);
    bool calibrated = o.q.mode == "static" || o.q.mode == "qat";
    if (calibrated) {
      train_set = o.data.load(true, &g);
      train::check_input_fits(g, train_set);
    }
    if (o.q.mode == "qat" && o.no_eval) test_set = o.data.load(false, &g);  // the trainer evaluates every epoch
    const ir::Graph original = g.clone();
    nlohmann::json qat_log;
    o.q.train = [&](ir::Graph& fake) {
      train::TrainOptions to;
      to.epochs = o.epochs;
      to.lr = o.lr;
      to.batch_size = o.batch;
      to.seed = o.seed;
      to.progress = !o.json;
      train::TrainResult tr = train::train(fake, train_set, test_set, to);
      qat_log = {{"epochs", o.epochs}, {"lsq", o.q.learnable_scales}, {"best_accuracy", tr.best_accuracy},
                 {"best_epoch", tr.best_epoch}};
    };
    Snapshot before = snapshot_of(g, o.input, !o.no_latency);
    if (!o.no_eval) measure_before(before, g, test_set);

    // A calibration source: a fresh seeded loader over the training images per quantization.
    data::LoaderOptions calibration_options = calibrated ? train::loader_options_for(g, train_set) : data::LoaderOptions{};
    quantize::CalibrationSource calibration = [&]() -> std::function<bool(std::vector<at::Tensor>&)> {
      data::LoaderOptions lo = calibration_options;
      lo.batch_size = o.batch;
      lo.seed = o.seed;
      auto loader = std::make_shared<data::DataLoader>(train_set, lo);
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
    nlohmann::json sensitivity;
    if (o.sensitivity || o.max_drop >= 0) {
      data::Dataset val = data::random_subset(train_set, o.val_samples, o.seed + 1);
      // Without labels, "accuracy" is the top-1 agreement with the float model.
      auto accuracy = [&](const ir::Graph& graph) {
        return val.labeled() ? train::evaluate(graph, val).accuracy : train::compare(graph, original, val).agreement;
      };
      quantize::FallbackResult f = quantize::sensitivity_fallback(g, o.q, calibration, accuracy, o.max_drop);
      sensitivity = {{"validation_samples", val.size()}, {"by", val.labeled() ? "accuracy" : "agreement"}, {"float_accuracy", f.float_accuracy},
                     {"quantized_accuracy", f.quantized_accuracy}, {"final_accuracy", f.final_accuracy},
                     {"kept_float", f.kept_float}};
      for (const auto& l : f.layers) sensitivity["layers"].push_back({{"node", l.node}, {"op", l.op}, {"accuracy_float_alone", l.accuracy}});
      if (!o.json) {
        std::printf("sensitivity on %lld training images (seeded subset)%s: float %.2f%%, all int8 %.2f%%\n",
                    static_cast<long long>(val.size()), val.labeled() ? "" : " by top-1 agreement with the float model (no labels)",
                    100 * f.float_accuracy, 100 * f.quantized_accuracy);
        std::printf("%-28s %-8s %22s\n", "layer (most sensitive first)", "op", "accuracy, it alone float");
        for (const auto& l : f.layers) std::printf("%-28s %-8s %21.2f%%\n", l.node.c_str(), l.op.c_str(), 100 * l.accuracy);
        if (o.max_drop >= 0)
          std::printf("fallback (--max-drop %.2f points): %zu layer(s) kept float, validation %.2f%%\n\n", o.max_drop,
                      f.kept_float.size(), 100 * f.final_accuracy);
      }
      o.q.exclude_nodes.insert(o.q.exclude_nodes.end(), f.kept_float.begin(), f.kept_float.end());
    }
    quantize::QuantizeResult r = quantize::quantize(g, o.q, calibrated ? calibration() : nullptr);
    onnx_io::export_model(g, o.output);
    Snapshot after = snapshot_of(g, o.output, !o.no_latency);
    if (!o.no_eval) {  // as deployed: the file read back and run on shrink's int8 kernels
      ir::Graph deployed = onnx_io::import_model(o.output);
      passes::make_pipeline("inference").run(deployed);
      measure_after(after, deployed, original, test_set);
    }

    nlohmann::json j = {{"input", o.input}, {"output", o.output}, {"mode", o.q.mode},
                        {"observer", o.q.observer}, {"per_channel", o.q.per_channel},
                        {"calibration_batches", r.calibration_batches}, {"activations", r.activations.size()},
                        {"before", snapshot_json(before)}, {"after", snapshot_json(after)}};
    if (!qat_log.is_null()) j["qat"] = qat_log;
    if (o.q.equalize) {
      j["equalized"] = nlohmann::json::array();
      for (const auto& [a, b] : r.equalized) j["equalized"].push_back({a, b});
    }
    if (!sensitivity.is_null()) j["sensitivity"] = sensitivity;
    for (const auto& l : r.layers) {
      nlohmann::json jl = {{"node", l.node}, {"op", l.op}};
      if (l.skipped.empty()) {
        jl.update({{"weight_bytes_before", l.weight_bytes_before}, {"weight_bytes_after", l.weight_bytes_after}});
      } else {
        jl["skipped"] = l.skipped;
      }
      j["layers"].push_back(jl);
    }
    if (o.json) {
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::printf("%-28s %-8s %14s %14s\n", "layer", "op", "weight bytes", "stored");
    for (const auto& l : r.layers) {
      if (!l.skipped.empty()) {
        std::printf("%-28s %-8s float: %s\n", l.node.c_str(), l.op.c_str(), l.skipped.c_str());
        continue;
      }
      std::printf("%-28s %-8s %14lld %14lld\n", l.node.c_str(), l.op.c_str(), static_cast<long long>(l.weight_bytes_before),
                  static_cast<long long>(l.weight_bytes_after));
    }
    if (calibrated)
      std::printf("%zu activations quantized (%s), ranges from %lld calibration batches of %lld (%s observer)\n",
                  r.activations.size(), o.q.symmetric_activations ? "int8 symmetric" : "uint8 affine",
                  static_cast<long long>(r.calibration_batches), static_cast<long long>(o.batch), o.q.observer.c_str());
    if (o.q.equalize) std::printf("%zu layer pairs equalized\n", r.equalized.size());
    print_before_after(before, after);
    if (ops::int8_engine_available()) std::printf("%-16s (after: read back and run on shrink's int8 kernels)\n", "");
    std::printf("wrote %s\n", o.output.c_str());
  });
}

}  // namespace shrink::cli
