// shrink prune MODEL -o OUT --method l1|random|global --amount A [--schedule oneshot|iterative:N]
//   [--finetune EPOCHS] [--soft]: unstructured pruning with optional prune-retrain rounds,
//   and a before/after summary (parameters, non-zeros, bytes on disk, MACs, accuracy).
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "shrink/cli/commands.h"
#include "shrink/cli/validators.h"
#include "shrink/cli/data_options.h"
#include "shrink/cli/model_summary.h"
#include "shrink/core/error.h"
#include "shrink/core/parse.h"
#include "shrink/onnx/export.h"
#include "shrink/onnx/import.h"
#include "shrink/prune/gradual.h"
#include "shrink/prune/structured.h"
#include "shrink/report/latency.h"
#include "shrink/prune/unstructured.h"
#include "shrink/report/model_stats.h"
#include "shrink/train/trainer.h"

namespace shrink::cli {
namespace {

int parse_rounds(const std::string& schedule) {
  if (schedule == "oneshot" || schedule == "agp") return 1;
  const std::string prefix = "iterative:";
  if (schedule.rfind(prefix, 0) == 0) {
    return static_cast<int>(parse_int(schedule.substr(prefix.size()), "--schedule iterative:N", 1, 1000));
  }
  fail("--schedule: '", schedule, "' is not oneshot, iterative:N (N >= 1 rounds) or agp");
}

}  // namespace

void add_prune_command(CLI::App& app) {
  struct Options {
    std::string input, output, layers, ignored, schedule = "oneshot";
    prune::UnstructuredOptions prune;
    std::string layer_amounts, ranking = "uniform";
    double max_ratio = 1.0;
    int64_t taylor_batches = 32;
    int finetune = 0, norm = 2;
    int64_t round_to = 1;
    double agp_end = 0.75;
    int64_t agp_every = 50;
    double lr = 0.01;
    int64_t batch = 128;
    bool json = false, no_eval = false, no_latency = false;
    DataOptions data;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("prune", "Prune a model's weights (optionally with fine-tuning) and export it");
  cmd->add_option("model", opt->input, "ONNX model")->required();
  cmd->add_option("-o,--output", opt->output, "pruned model (ONNX)")->required();
  cmd->add_option("--method", opt->prune.method,
                  "unstructured: l1 (magnitude, per layer), random (per layer), global (magnitude across all "
                  "layers); structured (whole channels, physically removed): ln-structured (filter Ln norm, "
                  "--norm), slim (|BatchNorm scale|), taylor (first-order Taylor estimate of the loss change on "
                  "--taylor-batches training batches), random-structured")
      ->check(CLI::IsMember({"l1", "random", "global", "ln-structured", "slim", "taylor", "random-structured"}))
      ->capture_default_str();
  cmd->add_option("--norm", opt->norm, "ln-structured: the norm of the filters, 1 or 2")
      ->check(CLI::IsMember({1, 2}))
      ->capture_default_str();
  cmd->add_option("--round-to", opt->round_to, "structured: kept channels rounded up to a multiple of this")
      ->check(positive())
      ->capture_default_str();
  cmd->add_option("--ranking", opt->ranking,
                  "structured: uniform (each group loses --amount of its channels) or global (channels ranked "
                  "across groups, scores divided by their group's mean; --amount of all channels removed)")
      ->check(CLI::IsMember({"uniform", "global"}))
      ->capture_default_str();
  cmd->add_option("--max-ratio", opt->max_ratio, "structured: at most this fraction of any group's channels removed")
      ->check(range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--layer-amount", opt->layer_amounts,
                  "structured: per-layer fractions, comma-separated NAME=FRACTION (the group of the layer's output "
                  "channels)");
  cmd->add_option("--taylor-batches", opt->taylor_batches, "taylor: training batches the importance is averaged over")
      ->check(positive())
      ->capture_default_str();
  cmd->add_option("--amount", opt->prune.amount, "fraction of the weights to remove, in [0, 1)")->capture_default_str();
  cmd->add_option("--schedule", opt->schedule,
                  "oneshot, or iterative:N (N prune/fine-tune rounds, each removing 1-(1-amount)^(1/N) of the "
                  "weights still alive; Han et al. 2015), or agp (gradual pruning during the --finetune "
                  "epochs on the cubic schedule of Zhu & Gupta 2017)")
      ->capture_default_str();
  cmd->add_option("--finetune", opt->finetune, "fine-tuning epochs after each round (masked weights stay zero)")
      ->check(non_negative());
  cmd->add_option("--agp-end", opt->agp_end, "agp: fraction of the fine-tuning epochs by which the final sparsity is reached")
      ->check(range(0.01, 1.0))
      ->capture_default_str();
  cmd->add_option("--agp-every", opt->agp_every, "agp: training steps between mask updates")
      ->check(positive())
      ->capture_default_str();
  cmd->add_option("--lr", opt->lr, "fine-tuning learning rate (SGD, cosine)")->capture_default_str();
  cmd->add_option("--batch", opt->batch, "fine-tuning batch size")->capture_default_str();
  cmd->add_option("--layers", opt->layers, "comma-separated layer (node) names to prune (default: all)");
  cmd->add_option("--ignore", opt->ignored, "comma-separated layer (node) names to leave dense");
  cmd->add_option("--min-keep", opt->prune.min_keep, "global: fraction of each layer always kept")->capture_default_str();
  cmd->add_option("--seed", opt->prune.seed, "seed for random pruning and fine-tuning")->capture_default_str();
  cmd->add_flag("--soft", opt->prune.soft,
                "keep the masks in the model (Mul(weight, weight_mask)) instead of baking zeros into the weights");
  cmd->add_flag("--no-eval", opt->no_eval, "skip the test-set accuracy before and after");
  cmd->add_flag("--no-latency", opt->no_latency, "skip the deployed latency before and after");
  opt->data.add_to(cmd);
  cmd->add_flag("--json", opt->json, "print a JSON summary (no progress bars)");
  cmd->callback([opt] {
    Options& o = *opt;
    SHRINK_CHECK(o.prune.amount >= 0.0 && o.prune.amount < 1.0, "--amount must be in [0, 1), got ", o.prune.amount);
    int rounds = parse_rounds(o.schedule);
    const bool agp = o.schedule == "agp";
    const bool structured = o.prune.method == "ln-structured" || o.prune.method == "slim" ||
                            o.prune.method == "taylor" || o.prune.method == "random-structured";
    SHRINK_CHECK(!structured || !agp, "--schedule agp is for unstructured methods (masks); use iterative:N");
    SHRINK_CHECK(!structured || !o.prune.soft, "--soft keeps masks; structured pruning removes channels");
    SHRINK_CHECK(structured || (o.layer_amounts.empty() && o.ranking == "uniform" && o.max_ratio == 1.0),
                 "--layer-amount, --ranking and --max-ratio are for structured methods");
    prune::StructuredOptions so;
    so.method = o.prune.method == "ln-structured" ? (o.norm == 1 ? "l1" : "l2")
                : o.prune.method == "slim" || o.prune.method == "taylor" ? o.prune.method
                                                                         : "random";
    so.round_to = o.round_to;
    so.ignored = comma_list(o.ignored);
    so.layers = comma_list(o.layers);
    so.seed = o.prune.seed;
    so.global = o.ranking == "global";
    so.max_ratio = o.max_ratio;
    std::map<std::string, double> layer_totals;  // --layer-amount as given; each round takes its share
    for (const std::string& item : comma_list(o.layer_amounts)) {
      size_t eq = item.find('=');
      SHRINK_CHECK(eq != std::string::npos && eq > 0, "--layer-amount: '", item, "' is not NAME=FRACTION");
      so.layer_amounts[item.substr(0, eq)] =
          parse_real(item.substr(eq + 1), "--layer-amount " + item.substr(0, eq), 0.0, 1.0);
    }
    layer_totals = so.layer_amounts;
    std::map<std::string, std::pair<int64_t, int64_t>> channels;  // group -> (first before, last after)
    std::vector<std::string> skipped;
    SHRINK_CHECK(!agp || o.finetune > 0, "--schedule agp prunes during training: give --finetune EPOCHS");
    o.prune.layers = comma_list(o.layers);
    o.prune.ignored = comma_list(o.ignored);
    ir::Graph g = onnx_io::import_model(o.input);
    o.data.apply_to(g);

    bool need_data = !o.no_eval || o.finetune > 0 || o.prune.method == "taylor";
    data::Dataset train_set, test_set;
    if (need_data) {
      test_set = o.data.load(false, &g);
      if (o.finetune > 0 || o.prune.method == "taylor") train_set = o.data.load(true, &g);
    }
    const ir::Graph original = g.clone();
    Snapshot before = snapshot_of(g, o.input, !o.no_latency);
    if (!o.no_eval) measure_before(before, g, test_set);

    prune::UnstructuredOptions po = o.prune;
    po.amount = prune::amount_per_round(o.prune.amount, rounds);
    po.soft = o.prune.soft || o.finetune > 0;  // fine-tuning trains through the masks
    nlohmann::json round_log = nlohmann::json::array();
    std::vector<prune::LayerReport> last;
    for (int r = 0; r < rounds; ++r) {
      std::unique_ptr<prune::GradualPruner> gradual;
      if (structured) {
        so.amount = po.amount;
        for (auto& [name, amt] : so.layer_amounts) amt = prune::amount_per_round(layer_totals.at(name), rounds);
        if (so.method == "taylor")
          so.gradients = [&](const prune::GradientVisitor& visit) {
            train::for_each_gradient(g, train_set, o.taylor_batches, o.batch, o.prune.seed + r, visit);
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
        to.seed = o.prune.seed + r;
        to.progress = !o.json;
        if (gradual) {
          to.keep_best = false;  // an early epoch's weights would be less sparse
          to.after_step = [&](int64_t step, double epoch) { gradual->after_step(step, epoch); };
        }
        train::TrainResult tr = train::train(g, train_set, test_set, to);
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
      if (!o.json && rounds > 1)
        std::cerr << "round " << r + 1 << "/" << rounds << ": pruned " << po.amount * 100 << "% of the alive weights\n";
    }
    if (!o.prune.soft && !structured) prune::make_permanent(g);
    onnx_io::export_model(g, o.output);

    Snapshot after = snapshot_of(g, o.output, !o.no_latency);
    if (!o.no_eval) measure_after(after, g, original, test_set);

    nlohmann::json j = {{"input", o.input}, {"output", o.output}, {"method", o.prune.method},
                        {"amount", o.prune.amount}, {"schedule", o.schedule}, {"finetune_epochs", o.finetune},
                        {"soft", o.prune.soft}, {"before", snapshot_json(before)}, {"after", snapshot_json(after)},
                        {"rounds", round_log}};
    for (const auto& l : last)
      j["layers"].push_back({{"node", l.node}, {"weight", l.weight}, {"weights", l.total}, {"alive", l.alive_after}});
    for (const auto& [name, bc] : channels)
      j["groups"].push_back({{"group", name}, {"channels_before", bc.first}, {"channels_after", bc.second}});
    if (structured) j["skipped"] = skipped;
    if (o.json) {
      std::cout << j.dump(2) << "\n";
      return;
    }
    if (structured) {
      std::printf("%-28s %10s %10s\n", "channel group", "before", "after");
      for (const auto& [name, bc] : channels)
        std::printf("%-28s %10lld %10lld\n", name.c_str(), static_cast<long long>(bc.first),
                    static_cast<long long>(bc.second));
      for (const auto& sk : skipped) std::printf("skipped %s\n", sk.c_str());
    } else {
      std::printf("%-28s %12s %12s %8s\n", "layer", "weights", "non-zero", "sparsity");
    for (const auto& l : last)
      std::printf("%-28s %12lld %12lld %7.1f%%\n", l.node.c_str(), static_cast<long long>(l.total),
                  static_cast<long long>(l.alive_after), 100.0 * (l.total - l.alive_after) / std::max<int64_t>(1, l.total));
    }
    print_before_after(before, after);
    std::printf("wrote %s\n", o.output.c_str());
  });
}

}  // namespace shrink::cli
