// shrink quantize MODEL -o OUT --mode static|dynamic [--calib-batches 32] [--observer ...]
//   [--per-channel|--per-tensor]: int8 quantization exported as QDQ ONNX, with a per-layer
//   report and the model summary (parameters, bytes on disk, latency, accuracy).
#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "shrink/cli/commands.h"
#include "shrink/cli/output_flags.h"
#include "shrink/cli/validators.h"
#include "shrink/cli/data_options.h"
#include "shrink/cli/model_summary.h"
#include "shrink/core/error.h"
#include "shrink/onnx/export.h"
#include "shrink/onnx/import.h"
#include "shrink/ops/int8.h"
#include "shrink/passes/pass.h"
#include "shrink/core/parse.h"
#include "shrink/pipeline/quantize_stage.h"

namespace shrink::cli {

void add_quantize_command(CLI::App& app) {
  struct Options {
    onnx_io::Storage storage = onnx_io::Storage::Compact;
    std::string input, output, exclude, exclude_ops;
    int64_t calib_batches = 32, batch = 64;
    int epochs = 3, finetune = 0, bits = 0;
    double auto_bits_drop = 0;
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
  cmd->add_option("--auto-bits-drop", opt->auto_bits_drop,
                  "codebook: each layer not in --layer-bits gets the fewest bits (2 to --bits) whose codebook, that layer "
                  "alone shared, costs at most this many points of test accuracy (2,000-image subset)")
      ->check(non_negative());
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
  cmd->add_option("--smooth", opt->q.smooth,
                  "SmoothQuant (Xiao et al. 2023) with migration strength ALPHA in [0, 1] (0.5 typical): divide each "
                  "LayerNorm output channel by max|X|^a / max|W|^(1-a) and fold it into the linear layers after it "
                  "(static, dynamic, qat; dynamic then calibrates too)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_flag("--per-token", opt->q.per_token,
                "dynamic: quantize each layer's input per token (per row, int8 symmetric, scale max|row| / 127) "
                "instead of one uint8 range per batch");
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
  add_storage_flag(cmd, &opt->storage);
  cmd->add_flag("--json", opt->json, "print a JSON summary");
  // --mode codebook: weight sharing, optional centroid fine-tuning, export as codes.
  auto run_codebook = [](Options& o) {
    pipeline::CodebookSettings cs;
    cs.bits = o.bits ? o.bits : 4;
    cs.exclude = comma_list(o.exclude);
    cs.exclude_ops = comma_list(o.exclude_ops);
    cs.finetune = o.finetune;
    cs.lr = o.lr;
    cs.batch = o.batch;
    cs.seed = o.seed;
    cs.auto_bits_drop = o.auto_bits_drop;
    for (const std::string& item : comma_list(o.layer_bits)) {
      const size_t eq = item.find('=');
      SHRINK_CHECK(eq != std::string::npos && eq > 0, "--layer-bits: '", item, "' is not NAME=BITS");
      const double bits = parse_real(item.substr(eq + 1), "--layer-bits " + item.substr(0, eq), 2, 8);
      SHRINK_CHECK(bits == static_cast<int>(bits), "--layer-bits ", item.substr(0, eq), ": bits must be a whole number, got ",
                   item.substr(eq + 1));
      cs.layer_bits[item.substr(0, eq)] = static_cast<int>(bits);
    }
    cs.check(/*cli=*/true);
    pipeline::CodebookStage stage(cs);
    ir::Graph g = onnx_io::import_model(o.input);
    o.data.apply_to(g);
    data::Dataset test_set, train_set;
    if (!o.no_eval || o.finetune > 0 || o.auto_bits_drop > 0) test_set = o.data.load(false, &g);
    if (o.finetune > 0) train_set = o.data.load(true, &g);
    const ir::Graph original = g.clone();
    Snapshot before = snapshot_of(g, o.input, !o.no_latency);
    if (!o.no_eval) measure_before(before, g, test_set);
    nlohmann::json report = stage.apply(g, {&train_set, &test_set, !o.json});
    onnx_io::export_model(g, o.output, onnx_io::stored_as(o.storage));
    Snapshot after = snapshot_of(g, o.output, !o.no_latency);
    if (!o.no_eval) {
      ir::Graph deployed = onnx_io::import_model(o.output);
      passes::make_pipeline("inference").run(deployed);
      measure_after(after, deployed, original, test_set);
    }
    nlohmann::json j = {{"input", o.input}, {"output", o.output}, {"mode", "codebook"}, {"bits", cs.bits},
                        {"before", snapshot_json(before)}, {"after", snapshot_json(after)}};
    j.update(report);
    if (o.json) {
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::printf("%-28s %-8s %10s %10s %5s %8s %10s  %s\n", "layer", "op", "weights", "non-zeros", "bits", "entries",
                "rel.error", "");
    for (const auto& l : report["layers"])
      std::printf("%-28s %-8s %10lld %10lld %5d %8lld %10.4f  %s\n", l["node"].get<std::string>().c_str(),
                  l["op"].get<std::string>().c_str(), l["weights"].get<long long>(), l["nonzeros"].get<long long>(),
                  l["bits"].get<int>(), l["entries"].get<long long>(), l["relative_error"].get<double>(),
                  l["note"].get<std::string>().c_str());
    print_before_after(before, after);
    std::printf("wrote %s (shrink info %s: the per-layer storage)\n", o.output.c_str(), o.output.c_str());
  };
  cmd->callback([opt, lr_flag, run_codebook] {
    Options& o = *opt;
    if (o.q.mode == "codebook") {
      if (!lr_flag->count()) o.lr = 1e-4;
      return run_codebook(o);
    }
    SHRINK_CHECK(o.finetune == 0, "--finetune: only with --mode codebook (qat trains with --epochs)");
    SHRINK_CHECK(o.layer_bits.empty(), "--layer-bits: only with --mode codebook");
    pipeline::QuantizeSettings qs;
    qs.q = o.q;
    if (o.bits) qs.q.bits = o.bits;
    qs.q.per_channel = !o.per_tensor;
    qs.q.exclude_nodes = comma_list(o.exclude);
    qs.q.exclude_ops = comma_list(o.exclude_ops);
    qs.calib_batches = o.calib_batches;
    qs.batch = o.batch;
    qs.epochs = o.epochs;
    qs.lr = o.lr;
    qs.sensitivity = o.sensitivity;
    qs.max_drop = o.max_drop;
    qs.val_samples = o.val_samples;
    qs.seed = o.seed;
    qs.check(/*cli=*/true);
    pipeline::QuantizeStage stage(qs);
    ir::Graph g = onnx_io::import_model(o.input);
    o.data.apply_to(g);
    data::Dataset test_set, train_set;
    if (!o.no_eval || o.q.mode == "qat") test_set = o.data.load(false, &g);  // qat evaluates every epoch
    if (qs.calibrated()) train_set = o.data.load(true, &g);
    const ir::Graph original = g.clone();
    Snapshot before = snapshot_of(g, o.input, !o.no_latency);
    if (!o.no_eval) measure_before(before, g, test_set);

    nlohmann::json report = stage.apply(g, {&train_set, &test_set, !o.json});
    onnx_io::export_model(g, o.output, onnx_io::stored_as(o.storage));
    Snapshot after = snapshot_of(g, o.output, !o.no_latency);
    if (!o.no_eval) {  // as deployed: the file read back and run on shrink's int8 kernels
      ir::Graph deployed = onnx_io::import_model(o.output);
      passes::make_pipeline("inference").run(deployed);
      measure_after(after, deployed, original, test_set);
    }
    if (!o.json && report.contains("sensitivity")) {
      const auto& f = report["sensitivity"];
      const bool labeled = f["by"] == "accuracy";
      std::printf("sensitivity on %lld training images (seeded subset)%s: float %.2f%%, all int8 %.2f%%\n",
                  f["validation_samples"].get<long long>(),
                  labeled ? "" : " by top-1 agreement with the float model (no labels)",
                  100 * f["float_accuracy"].get<double>(), 100 * f["quantized_accuracy"].get<double>());
      std::printf("%-28s %-8s %22s\n", "layer (most sensitive first)", "op", "accuracy, it alone float");
      for (const auto& l : f["layers"])
        std::printf("%-28s %-8s %21.2f%%\n", l["node"].get<std::string>().c_str(), l["op"].get<std::string>().c_str(),
                    100 * l["accuracy_float_alone"].get<double>());
      if (o.max_drop >= 0)
        std::printf("fallback (--max-drop %.2f points): %zu layer(s) kept float, validation %.2f%%\n\n", o.max_drop,
                    f["kept_float"].size(), 100 * f["final_accuracy"].get<double>());
    }
    nlohmann::json j = {{"input", o.input}, {"output", o.output}, {"mode", o.q.mode},
                        {"observer", o.q.observer}, {"per_channel", qs.q.per_channel},
                        {"before", snapshot_json(before)}, {"after", snapshot_json(after)}};
    j.update(report);
    if (o.json) {
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::printf("%-28s %-8s %14s %14s\n", "layer", "op", "weight bytes", "stored");
    for (const auto& l : report["layers"]) {
      const std::string node = l["node"], op = l["op"];
      if (l.contains("skipped")) {
        std::printf("%-28s %-8s float: %s\n", node.c_str(), op.c_str(), l["skipped"].get<std::string>().c_str());
        continue;
      }
      std::printf("%-28s %-8s %14lld %14lld\n", node.c_str(), op.c_str(), l["weight_bytes_before"].get<long long>(),
                  l["weight_bytes_after"].get<long long>());
    }
    if (qs.calibrated())
      std::printf("%zu activations quantized (%s), ranges from %lld calibration batches of %lld (%s observer)\n",
                  static_cast<size_t>(report["activations"].get<int64_t>()), o.q.symmetric_activations ? "int8 symmetric" : "uint8 affine",
                  report["calibration_batches"].get<long long>(), static_cast<long long>(o.batch), o.q.observer.c_str());
    if (o.q.equalize) std::printf("%zu layer pairs equalized\n", report["equalized"].size());
    if (report.contains("smoothed")) {
      double before = 0, after = 0;
      for (const auto& sm : report["smoothed"]) {
        before = std::max(before, sm["activation_range_before"].get<double>());
        after = std::max(after, sm["activation_range_after"].get<double>());
      }
      if (report["smoothed"].empty())
        std::printf("SmoothQuant: no LayerNormalization read only by linear layers; nothing smoothed\n");
      else
        std::printf("SmoothQuant (alpha %.2f): %zu LayerNorm outputs smoothed, largest channel range %.3g -> %.3g\n",
                    o.q.smooth, report["smoothed"].size(), before, after);
    }
    print_before_after(before, after);
    if (ops::int8_engine_available()) std::printf("%-16s (after: read back and run on shrink's int8 kernels)\n", "");
    std::printf("wrote %s\n", o.output.c_str());
  });
}

}  // namespace shrink::cli
