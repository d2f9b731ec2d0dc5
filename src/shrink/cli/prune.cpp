// shrink prune MODEL -o OUT --method l1|random|global --amount A [--schedule oneshot|iterative:N]
//   [--finetune EPOCHS] [--soft]: unstructured pruning with optional prune-retrain rounds,
//   and a before/after summary (parameters, non-zeros, bytes on disk, MACs, accuracy).
#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "shrink/cli/commands.h"
#include "shrink/cli/output_flags.h"
#include "shrink/cli/validators.h"
#include "shrink/cli/data_options.h"
#include "shrink/cli/model_summary.h"
#include "shrink/core/error.h"
#include "shrink/core/parse.h"
#include "shrink/onnx/export.h"
#include "shrink/onnx/import.h"
#include "shrink/pipeline/prune_stage.h"

namespace shrink::cli {
void add_prune_command(CLI::App& app) {
  struct Options {
    onnx_io::Storage storage = onnx_io::Storage::Compact;
    std::string input, output, layers, ignored, layer_amounts;
    pipeline::PruneSettings ps;
    bool json = false, no_eval = false, no_latency = false;
    DataOptions data;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("prune", "Prune a model's weights (optionally with fine-tuning) and export it");
  cmd->add_option("model", opt->input, "ONNX model")->required();
  cmd->add_option("-o,--output", opt->output, "pruned model (ONNX)")->required();
  cmd->add_option("--method", opt->ps.method,
                  "unstructured: l1 (magnitude, per layer), random (per layer), global (magnitude across all "
                  "layers); structured (whole channels, physically removed): ln-structured (filter Ln norm, "
                  "--norm), slim (|BatchNorm scale|), taylor (first-order Taylor estimate of the loss change on "
                  "--taylor-batches training batches), random-structured")
      ->check(CLI::IsMember({"l1", "random", "global", "ln-structured", "slim", "taylor", "random-structured"}))
      ->capture_default_str();
  cmd->add_option("--norm", opt->ps.norm, "ln-structured: the norm of the filters, 1 or 2")
      ->check(CLI::IsMember({1, 2}))
      ->capture_default_str();
  cmd->add_option("--round-to", opt->ps.round_to, "structured: kept channels rounded up to a multiple of this")
      ->check(positive())
      ->capture_default_str();
  cmd->add_option("--ranking", opt->ps.ranking,
                  "structured: uniform (each group loses --amount of its channels) or global (channels ranked "
                  "across groups, scores divided by their group's mean; --amount of all channels removed)")
      ->check(CLI::IsMember({"uniform", "global"}))
      ->capture_default_str();
  cmd->add_flag("--embedding", opt->ps.embedding,
                "structured, transformers: prune the embedding width too (the residual stream through every "
                "LayerNorm, residual Add, learned positions and class token; norms then over the remaining channels)");
  cmd->add_option("--max-ratio", opt->ps.max_ratio, "structured: at most this fraction of any group's channels removed")
      ->check(range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--layer-amount", opt->layer_amounts,
                  "structured: per-layer fractions, comma-separated NAME=FRACTION (the group of the layer's output "
                  "channels)");
  cmd->add_option("--taylor-batches", opt->ps.taylor_batches, "taylor: training batches the importance is averaged over")
      ->check(positive())
      ->capture_default_str();
  cmd->add_option("--amount", opt->ps.amount, "fraction of the weights to remove, in [0, 1)")->capture_default_str();
  cmd->add_option("--schedule", opt->ps.schedule,
                  "oneshot, or iterative:N (N prune/fine-tune rounds, each removing 1-(1-amount)^(1/N) of the "
                  "weights still alive; Han et al. 2015), or agp (gradual pruning during the --finetune "
                  "epochs on the cubic schedule of Zhu & Gupta 2017)")
      ->capture_default_str();
  cmd->add_option("--finetune", opt->ps.finetune, "fine-tuning epochs after each round (masked weights stay zero)")
      ->check(non_negative());
  cmd->add_option("--agp-end", opt->ps.agp_end, "agp: fraction of the fine-tuning epochs by which the final sparsity is reached")
      ->check(range(0.01, 1.0))
      ->capture_default_str();
  cmd->add_option("--agp-every", opt->ps.agp_every, "agp: training steps between mask updates")
      ->check(positive())
      ->capture_default_str();
  cmd->add_option("--lr", opt->ps.lr, "fine-tuning learning rate (SGD, cosine)")->capture_default_str();
  cmd->add_option("--batch", opt->ps.batch, "fine-tuning batch size")->capture_default_str();
  cmd->add_option("--layers", opt->layers, "comma-separated layer (node) names to prune (default: all)");
  cmd->add_option("--ignore", opt->ignored, "comma-separated layer (node) names to leave dense");
  cmd->add_option("--min-keep", opt->ps.min_keep, "global: fraction of each layer always kept")->capture_default_str();
  cmd->add_option("--seed", opt->ps.seed, "seed for random pruning and fine-tuning")->capture_default_str();
  cmd->add_flag("--soft", opt->ps.soft,
                "keep the masks in the model (Mul(weight, weight_mask)) instead of baking zeros into the weights");
  cmd->add_flag("--no-eval", opt->no_eval, "skip the test-set accuracy before and after");
  cmd->add_flag("--no-latency", opt->no_latency, "skip the deployed latency before and after");
  opt->data.add_to(cmd);
  add_storage_flag(cmd, &opt->storage);
  cmd->add_flag("--json", opt->json, "print a JSON summary (no progress bars)");
  cmd->callback([opt] {
    Options& o = *opt;
    pipeline::PruneSettings& ps = o.ps;
    ps.layers = comma_list(o.layers);
    ps.ignore = comma_list(o.ignored);
    for (const std::string& item : comma_list(o.layer_amounts)) {
      size_t eq = item.find('=');
      SHRINK_CHECK(eq != std::string::npos && eq > 0, "--layer-amount: '", item, "' is not NAME=FRACTION");
      ps.layer_amount[item.substr(0, eq)] = parse_real(item.substr(eq + 1), "--layer-amount " + item.substr(0, eq), 0.0, 1.0);
    }
    ps.check(/*cli=*/true);
    pipeline::PruneStage stage(ps);
    const bool structured = ps.structured();

    ir::Graph g = onnx_io::import_model(o.input);
    o.data.apply_to(g);
    data::Dataset train_set, test_set;
    if (!o.no_eval || ps.finetune > 0 || stage.needs_training_data()) {
      test_set = o.data.load(false, &g);
      if (stage.needs_training_data()) train_set = o.data.load(true, &g);
    }
    const ir::Graph original = g.clone();
    Snapshot before = snapshot_of(g, o.input, !o.no_latency);
    if (!o.no_eval) measure_before(before, g, test_set);

    nlohmann::json report = stage.apply(g, {&train_set, &test_set, !o.json});
    onnx_io::export_model(g, o.output, onnx_io::stored_as(o.storage));

    Snapshot after = snapshot_of(g, o.output, !o.no_latency);
    if (!o.no_eval) measure_after(after, g, original, test_set);

    nlohmann::json j = {{"input", o.input}, {"output", o.output}, {"method", ps.method},
                        {"amount", ps.amount}, {"schedule", ps.schedule}, {"finetune_epochs", ps.finetune},
                        {"soft", ps.soft}, {"before", snapshot_json(before)}, {"after", snapshot_json(after)}};
    j.update(report);
    if (o.json) {
      std::cout << j.dump(2) << "\n";
      return;
    }
    if (structured) {
      std::printf("%-28s %10s %10s\n", "channel group", "before", "after");
      for (const auto& gr : report.value("groups", nlohmann::json::array()))
        std::printf("%-28s %10lld %10lld\n", gr["group"].get<std::string>().c_str(),
                    gr["channels_before"].get<long long>(), gr["channels_after"].get<long long>());
      for (const auto& sk : report["skipped"]) std::printf("skipped %s\n", sk.get<std::string>().c_str());
    } else {
      std::printf("%-28s %12s %12s %8s\n", "layer", "weights", "non-zero", "sparsity");
      for (const auto& l : report.value("layers", nlohmann::json::array())) {
        const long long total = l["weights"], alive = l["alive"];
        std::printf("%-28s %12lld %12lld %7.1f%%\n", l["node"].get<std::string>().c_str(), total, alive,
                    100.0 * (total - alive) / std::max<long long>(1, total));
      }
    }
    print_before_after(before, after);
    std::printf("wrote %s\n", o.output.c_str());
  });
}

}  // namespace shrink::cli
