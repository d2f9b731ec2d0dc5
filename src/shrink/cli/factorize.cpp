// shrink factorize MODEL -o OUT --method svd|tucker|cp --rank N|vbmf|search | --ratio R | --energy E
//   [--layers A,B] [--finetune EPOCHS]: low-rank factorization with a per-layer report
//   (ranks, weights and MACs before/after, reconstruction error) and the model summary.
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "shrink/cli/commands.h"
#include "shrink/cli/validators.h"
#include "shrink/cli/data_options.h"
#include "shrink/cli/model_summary.h"
#include "shrink/core/error.h"
#include "shrink/factorize/factorize.h"
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
  cmd->add_flag("--json", opt->json, "print a JSON summary (no progress bars)");
  cmd->callback([opt, ratio, energy] {
    Options& o = *opt;
    bool search = o.rank == "search";
    if (!o.rank.empty() && !search) o.f.rule = factorize::parse_rank(o.rank);
    o.f.rule.vbmf_weaken = o.vbmf_weaken;
    if (ratio->count()) o.f.rule = {factorize::RankRule::Kind::Ratio, o.ratio};
    if (energy->count()) o.f.rule = {factorize::RankRule::Kind::Energy, o.energy};
    SHRINK_CHECK(!ratio->count() || o.ratio > 1.0, "--ratio must be above 1, got ", o.ratio);
    SHRINK_CHECK(!energy->count() || (o.energy > 0 && o.energy <= 1.0), "--energy must be in (0, 1], got ", o.energy);
    o.f.layers = comma_list(o.layers);
    ir::Graph g = onnx_io::import_model(o.input);
    o.data.apply_to(g);

    data::Dataset train_set, test_set;
    if (!o.no_eval) test_set = o.data.load(false, &g);
    if (o.finetune > 0 || search) train_set = o.data.load(true, &g);
    if (o.finetune > 0 && o.no_eval) test_set = o.data.load(false, &g);  // the trainer evaluates every epoch
    Snapshot before = snapshot_of(g, o.input, !o.no_latency);
    if (!o.no_eval) measure_before(before, g, test_set);

    ir::Graph original = g.clone();
    std::vector<factorize::LayerResult> layers;
    if (search) {
      data::Dataset val = data::random_subset(train_set, o.val_samples, o.f.seed);
      factorize::SearchOptions so;
      so.tolerance = o.tolerance;
      // Without labels: the top-1 agreement with the original model.
      so.accuracy = [&](const ir::Graph& m) {
        return val.labeled() ? train::evaluate(m, val).accuracy : train::compare(m, original, val).agreement;
      };
      if (!o.json) so.progress = [](const std::string& line) { std::cerr << "search: " << line << "\n"; };
      layers = factorize::factorize_search(g, o.f, so);
    } else {
      layers = factorize::factorize(g, o.f);
    }
    bool any = false;
    for (const auto& l : layers) any = any || l.skipped.empty();
    SHRINK_CHECK(any, o.input, ": no layer was factorized",
                 layers.empty() ? std::string(" (no Gemm, MatMul or Conv the method applies to)")
                                : "; first: '" + layers.front().node + "': " + layers.front().skipped);
    // Each factorized layer timed alone, before and after (batch 64, its recorded input shape).
    std::map<std::string, std::pair<double, double>> layer_ms;
    for (const auto& l : layers) {
      if (!l.skipped.empty()) continue;
      layer_ms[l.node] = {report::measure_nodes_latency(original, {l.node}, 64, 20, 3).median_ms,
                          report::measure_nodes_latency(g, l.nodes_after, 64, 20, 3).median_ms};
    }
    double factorized_accuracy = -1;
    if (!o.no_eval && test_set.labeled()) factorized_accuracy = train::evaluate(g, test_set).accuracy;
    nlohmann::json finetune_log;
    if (o.finetune > 0) {
      train::TrainOptions to;
      to.epochs = o.finetune;
      to.lr = o.lr;
      to.batch_size = o.batch;
      to.seed = o.f.seed;
      to.progress = !o.json;
      train::TrainResult tr = train::train(g, train_set, test_set, to);
      finetune_log = {{"epochs", o.finetune}, {"best_accuracy", tr.best_accuracy}, {"best_epoch", tr.best_epoch}};
    }
    onnx_io::export_model(g, o.output);
    Snapshot after = snapshot_of(g, o.output, !o.no_latency);
    if (!o.no_eval) measure_after(after, g, original, test_set);

    nlohmann::json j = {{"input", o.input}, {"output", o.output}, {"method", o.f.method},
                        {"before", snapshot_json(before)}, {"after", snapshot_json(after)}};
    if (factorized_accuracy >= 0) j["accuracy_before_finetune"] = factorized_accuracy;
    if (!finetune_log.is_null()) j["finetune"] = finetune_log;
    for (const auto& l : layers) {
      nlohmann::json jl = {{"node", l.node}, {"op", l.op}};
      if (l.skipped.empty()) {
        jl.update({{"decomposition", l.method}, {"ranks", l.ranks}, {"weights_before", l.params_before},
                   {"weights_after", l.params_after}, {"macs_before", l.macs_before}, {"macs_after", l.macs_after},
                   {"relative_error", l.error}, {"nodes", l.nodes_after},
                   {"latency_ms_before", layer_ms.at(l.node).first}, {"latency_ms_after", layer_ms.at(l.node).second}});
      } else {
        jl["skipped"] = l.skipped;
      }
      j["layers"].push_back(jl);
    }
    if (o.json) {
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::printf("%-24s %-8s %-9s %10s %10s %12s %12s %9s %9s %9s\n", "layer", "method", "ranks", "weights", "after",
                "MACs", "after", "rel.err", "ms", "after");
    for (const auto& l : layers) {
      if (!l.skipped.empty()) {
        std::printf("%-24s skipped: %s\n", l.node.c_str(), l.skipped.c_str());
        continue;
      }
      std::printf("%-24s %-8s %-9s %10lld %10lld %12lld %12lld %9.4f %9.3f %9.3f\n", l.node.c_str(), l.method.c_str(),
                  ranks_text(l.ranks).c_str(), static_cast<long long>(l.params_before),
                  static_cast<long long>(l.params_after), static_cast<long long>(l.macs_before),
                  static_cast<long long>(l.macs_after), l.error, layer_ms.at(l.node).first, layer_ms.at(l.node).second);
    }
    std::printf("(layer ms: each layer alone, median of 20 runs at batch 64)\n");
    print_before_after(before, after);
    if (factorized_accuracy >= 0 && o.finetune > 0)
      std::printf("%-16s %.2f before fine-tuning\n", "", 100 * factorized_accuracy);
    std::printf("wrote %s\n", o.output.c_str());
  });
}

}  // namespace shrink::cli
