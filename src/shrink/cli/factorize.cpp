// shrink factorize MODEL -o OUT --method svd|tucker|cp --rank N|vbmf|search | --ratio R | --energy E
//   [--layers A,B] [--finetune EPOCHS]: low-rank factorization with a per-layer report
//   (ranks, weights and MACs before/after, reconstruction error) and the model summary.
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "shrink/cli/commands.h"
#include "shrink/cli/output_flags.h"
#include "shrink/cli/validators.h"
#include "shrink/cli/data_options.h"
#include "shrink/cli/model_summary.h"
#include "shrink/core/error.h"
#include "shrink/factorize/factorize.h"
#include "shrink/pipeline/factorize_stage.h"
#include "shrink/report/latency.h"
#include "shrink/onnx/export.h"
#include "shrink/onnx/import.h"
#include "shrink/train/trainer.h"

namespace shrink::cli {
namespace {

std::string ranks_text(const std::vector<int64_t>& r) {
  std::string s;
  for (size_t i = 0; i < r.size(); ++i) s += (i ? "," : "") + std::to_string(r[i]);
  return s;
}

}  // namespace

void add_factorize_command(CLI::App& app) {
  struct Options {
    onnx_io::Storage storage = onnx_io::Storage::Compact;
    std::string input, output, rank, layers;
    double ratio = 0, energy = 0, tolerance = 1.0, lr = 0.01, vbmf_weaken = 1.0;
    int64_t val_samples = 5000, batch = 128;
    int finetune = 0;
    bool json = false, no_eval = false, no_latency = false;
    factorize::FactorizeOptions f;
    DataOptions data;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("factorize", "Replace layers by low-rank factors (SVD, Tucker-2, CP) and export the model");
  cmd->add_option("model", opt->input, "ONNX model")->required();
  cmd->add_option("-o,--output", opt->output, "factorized model (ONNX)")->required();
  cmd->add_option("--method", opt->f.method,
                  "svd (Gemm, MatMul, Conv: two layers), tucker (kxk Conv: 1x1, kxk core, 1x1; Tucker-1 for few "
                  "input channels), cp (kxk Conv: 1x1, depthwise kx1 and 1xk, 1x1)")
      ->check(CLI::IsMember({"svd", "tucker", "cp"}))
      ->capture_default_str();
  auto* rank = cmd->add_option("--rank", opt->rank,
                               "N (the same rank for every layer), vbmf (EVBMF on the weight's unfoldings), or search "
                               "(per layer, the smallest rank within --tolerance points of validation accuracy)");
  auto* ratio = cmd->add_option("--ratio", opt->ratio, "ranks giving each layer this many times fewer weights (> 1)");
  auto* energy = cmd->add_option("--energy", opt->energy, "ranks keeping this fraction of the singular values' energy");
  rank->excludes(ratio)->excludes(energy);
  ratio->excludes(energy);
  cmd->add_option("--vbmf-weaken", opt->vbmf_weaken,
                  "vbmf: 1 keeps EVBMF's ranks; w < 1 takes full - w (full - vbmf) (weakened VBMF, Gusak et al. 2019)")
      ->check(range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--layers", opt->layers, "comma-separated node names (default: every layer the method applies to)");
  cmd->add_option("--tolerance", opt->tolerance, "search: accuracy points the model may lose")->capture_default_str();
  cmd->add_option("--val-samples", opt->val_samples, "search: training images (seeded subset) used as validation")
      ->check(positive())
      ->capture_default_str();
  cmd->add_option("--max-iterations", opt->f.max_iterations, "cp: ALS iteration cap")
      ->check(positive())
      ->capture_default_str();
  cmd->add_option("--als-tolerance", opt->f.tolerance, "cp/tucker: stop when the relative error moves less than this")
      ->capture_default_str();
  cmd->add_option("--finetune", opt->finetune, "fine-tuning epochs after factorizing")->check(non_negative());
  cmd->add_option("--lr", opt->lr, "fine-tuning learning rate (SGD, cosine)")->capture_default_str();
  cmd->add_option("--batch", opt->batch, "fine-tuning batch size")->capture_default_str();
  cmd->add_option("--seed", opt->f.seed, "seed (CP initialisation, validation subset, fine-tuning)")->capture_default_str();
  cmd->add_flag("--no-eval", opt->no_eval, "skip the test-set accuracy before and after");
  cmd->add_flag("--no-latency", opt->no_latency, "skip the deployed latency before and after");
  opt->data.add_to(cmd);
  add_storage_flag(cmd, &opt->storage);
  cmd->add_flag("--json", opt->json, "print a JSON summary (no progress bars)");
  cmd->callback([opt, ratio, energy] {
    Options& o = *opt;
    SHRINK_CHECK(!ratio->count() || o.ratio > 1.0, "--ratio must be above 1, got ", o.ratio);
    SHRINK_CHECK(!energy->count() || (o.energy > 0 && o.energy <= 1.0), "--energy must be in (0, 1], got ", o.energy);
    pipeline::FactorizeSettings fs;
    fs.f = o.f;
    fs.search = o.rank == "search";
    if (!o.rank.empty() && !fs.search) fs.f.rule = factorize::parse_rank(o.rank);
    fs.f.rule.vbmf_weaken = o.vbmf_weaken;
    if (ratio->count()) fs.f.rule = {factorize::RankRule::Kind::Ratio, o.ratio};
    if (energy->count()) fs.f.rule = {factorize::RankRule::Kind::Energy, o.energy};
    fs.f.layers = comma_list(o.layers);
    fs.tolerance = o.tolerance;
    fs.val_samples = o.val_samples;
    fs.finetune = o.finetune;
    fs.lr = o.lr;
    fs.batch = o.batch;
    pipeline::FactorizeStage stage(fs);
    ir::Graph g = onnx_io::import_model(o.input);
    o.data.apply_to(g);

    data::Dataset train_set, test_set;
    if (!o.no_eval || o.finetune > 0) test_set = o.data.load(false, &g);  // the trainer evaluates every epoch
    if (stage.needs_training_data()) train_set = o.data.load(true, &g);
    Snapshot before = snapshot_of(g, o.input, !o.no_latency);
    if (!o.no_eval) measure_before(before, g, test_set);

    const ir::Graph original = g.clone();
    nlohmann::json report;
    try {
      report = stage.apply(g, {&train_set, &test_set, !o.json});
    } catch (const Error& e) {
      fail(o.input, ": ", e.what());
    }
    // Each factorized layer timed alone, before and after (batch 64, its recorded input shape).
    for (auto& l : report["layers"]) {
      if (l.contains("skipped")) continue;
      l["latency_ms_before"] = report::measure_nodes_latency(original, {l["node"].get<std::string>()}, 64, 20, 3).median_ms;
      l["latency_ms_after"] = report::measure_nodes_latency(g, l["nodes"].get<std::vector<std::string>>(), 64, 20, 3).median_ms;
    }
    onnx_io::export_model(g, o.output, onnx_io::stored_as(o.storage));
    Snapshot after = snapshot_of(g, o.output, !o.no_latency);
    if (!o.no_eval) measure_after(after, g, original, test_set);

    nlohmann::json j = {{"input", o.input}, {"output", o.output}, {"method", o.f.method},
                        {"before", snapshot_json(before)}, {"after", snapshot_json(after)}};
    j.update(report);
    if (o.no_eval) j.erase("accuracy_before_finetune");
    const double factorized_accuracy = j.value("accuracy_before_finetune", -1.0);
    if (o.json) {
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::printf("%-24s %-8s %-9s %10s %10s %12s %12s %9s %9s %9s\n", "layer", "method", "ranks", "weights", "after",
                "MACs", "after", "rel.err", "ms", "after");
    for (const auto& l : report["layers"]) {
      const std::string node = l["node"];
      if (l.contains("skipped")) {
        std::printf("%-24s skipped: %s\n", node.c_str(), l["skipped"].get<std::string>().c_str());
        continue;
      }
      std::printf("%-24s %-8s %-9s %10lld %10lld %12lld %12lld %9.4f %9.3f %9.3f\n", node.c_str(),
                  l["decomposition"].get<std::string>().c_str(), ranks_text(l["ranks"].get<std::vector<int64_t>>()).c_str(),
                  l["weights_before"].get<long long>(), l["weights_after"].get<long long>(), l["macs_before"].get<long long>(),
                  l["macs_after"].get<long long>(), l["relative_error"].get<double>(), l["latency_ms_before"].get<double>(),
                  l["latency_ms_after"].get<double>());
    }
    std::printf("(layer ms: each layer alone, median of 20 runs at batch 64)\n");
    print_before_after(before, after);
    if (factorized_accuracy >= 0 && o.finetune > 0)
      std::printf("%-16s %.2f before fine-tuning\n", "", 100 * factorized_accuracy);
    std::printf("wrote %s\n", o.output.c_str());
  });
}

}  // namespace shrink::cli
