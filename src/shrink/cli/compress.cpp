// shrink compress MODEL -o OUTDIR [--max-drop P] [--target size|latency|macs] [--recipe FILE]
//   [--time-limit MINUTES] [--resume] [--json]: a recipe of stages run as a search under an
//   accuracy budget (pipeline/compress.h); prints the chosen model's lineage and where the
//   report is.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "shrink/cli/commands.h"
#include "shrink/cli/output_flags.h"
#include "shrink/cli/data_options.h"
#include "shrink/cli/validators.h"
#include "shrink/core/error.h"
#include "shrink/onnx/import.h"
#include "shrink/pipeline/compress.h"
#include "shrink/pipeline/ort_latency.h"
#include "shrink/pipeline/recipe.h"
#include "shrink/zoo/zoo.h"

namespace shrink::cli {

void add_compress_command(CLI::App& app) {
  struct Options {
    std::string input, outdir, recipe, target = "size", latency_in = "shrink";
    double max_drop = 1.0, max_drop_relative = 0, minutes = 0;
    int trials = 0;
    int64_t validation_samples = 10000;
    uint64_t seed = 0;
    bool resume = false, json = false, print_recipe = false, no_ort = false;
    DataOptions data;
    onnx_io::Storage storage = onnx_io::Storage::Compact;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "compress", "Search a recipe of stages (prune, codebook/int8, factorize, fine-tune) for the smallest, fastest or "
                  "cheapest model within an accuracy budget; writes OUTDIR/model.onnx, candidates/, report.json, report.html");
  cmd->add_option("model", opt->input, "trained ONNX model")->required();
  cmd->add_option("-o,--output", opt->outdir, "output directory")->required();
  auto* target = cmd->add_option("--target", opt->target,
                                 "what to minimise within the budget: size (bytes on disk), latency (ms at batch 64), macs")
                     ->check(CLI::IsMember({"size", "latency", "macs"}))
                     ->capture_default_str();
  auto* drop = cmd->add_option("--max-drop", opt->max_drop,
                               "accuracy points the result may lose on the validation split (agreement points with the "
                               "original when the data has no labels)")
                   ->check(non_negative())
                   ->capture_default_str();
  auto* rel = cmd->add_option("--max-drop-relative", opt->max_drop_relative,
                              "the budget as a percentage of the original's validation accuracy instead")
                  ->check(range(0.0, 100.0));
  drop->excludes(rel);
  auto* lat_in = cmd->add_option("--latency-in", opt->latency_in,
                                 "where latency is measured for the search: shrink (its runtime) or onnxruntime")
                     ->check(CLI::IsMember({"shrink", "onnxruntime"}))
                     ->capture_default_str();
  cmd->add_option("--recipe", opt->recipe,
                  "YAML or JSON recipe: target, budget, limits and an ordered list of stages whose options may be "
                  "lists or {from, to, step} ranges to search (README: \"Recipes\"); flags given here override it");
  auto* minutes = cmd->add_option("--time-limit", opt->minutes, "minutes after which no further stage is started")
                      ->check(non_negative());
  auto* trials = cmd->add_option("--trials", opt->trials, "candidates made at most")->check(non_negative());
  auto* vs = cmd->add_option("--validation-samples", opt->validation_samples,
                             "training samples held out (seeded) to score candidates on (at most a fifth of the split)")
                 ->check(positive())
                 ->capture_default_str();
  auto* seed = cmd->add_option("--seed", opt->seed, "seed of the validation split")->capture_default_str();
  cmd->add_flag("--resume", opt->resume, "continue a run in OUTDIR: every candidate already made is reused");
  cmd->add_flag("--print-recipe", opt->print_recipe, "print the recipe that would run (JSON) and exit");
  cmd->add_flag("--no-ort", opt->no_ort, "do not time the original and the result in ONNX Runtime");
  opt->data.add_to(cmd);
  add_storage_flag(cmd, &opt->storage);
  cmd->add_flag("--json", opt->json, "print a JSON summary (no progress)");
  cmd->callback([opt, target, drop, rel, lat_in, minutes, trials, vs, seed] {
    Options& o = *opt;
    ir::Graph g = onnx_io::import_model(o.input);
    pipeline::Recipe recipe =
        o.recipe.empty() ? pipeline::default_recipe(o.target, zoo::has_model(g.name) ? g.name : "") : pipeline::read_recipe(o.recipe);
    // A recipe's stages suit its own target; the default recipe is built for --target.
    SHRINK_CHECK(!target->count() || recipe.target == o.target, "--target ", o.target, ": the recipe ", o.recipe,
                 " is for target ", recipe.target, " (its stages suit it); change the recipe's target instead");
    if (drop->count() || rel->count()) {
      recipe.budget.relative = rel->count() > 0;
      recipe.budget.max_drop = recipe.budget.relative ? o.max_drop_relative : o.max_drop;
    }
    if (lat_in->count()) recipe.budget.latency_in = o.latency_in;
    SHRINK_CHECK(!o.no_ort || recipe.budget.latency_in != "onnxruntime",
                 "--no-ort: latency is measured in onnxruntime for this search (--latency-in or the recipe's latency_in)");
    if (minutes->count()) recipe.minutes = o.minutes;
    if (trials->count()) recipe.trials = o.trials;
    if (vs->count()) recipe.validation_samples = o.validation_samples;
    if (seed->count()) recipe.seed = o.seed;
    if (o.print_recipe) {
      std::cout << pipeline::recipe_json(recipe).dump(2) << "\n";
      return;
    }
    o.data.apply_to(g);
    data::Dataset train_set = o.data.load(true, &g);
    data::Dataset test_set = o.data.load(false, &g);
    pipeline::CompressOptions co;
    co.outdir = o.outdir;
    co.recipe = recipe;
    co.resume = o.resume;
    co.progress = !o.json;
    co.input_name = o.input;
    if (!o.data.dir.empty()) co.reproduce_flags = " --data " + o.data.dir;
    co.storage = o.storage;
    if (o.storage != onnx_io::Storage::Compact)
      co.reproduce_flags += std::string(" --storage ") + onnx_io::storage_name(o.storage);
    if (!o.no_ort) co.ort_script = pipeline::find_ort_script();
    pipeline::CompressResult r = pipeline::compress(g, train_set, test_set, co);
    const nlohmann::json& j = r.report;
    const auto& fo = j["final"]["original"];
    const auto& fc = j["final"]["chosen"];
    if (o.json) {
      nlohmann::json out = {{"output", o.outdir}, {"model", o.outdir + "/model.onnx"}, {"report", o.outdir + "/report.html"},
                            {"budget_met", j["budget_met"]}, {"notes", j["notes"]}, {"chosen", j["chosen"]},
                            {"final", j["final"]}, {"candidates", j["candidates"].size()}, {"seconds", j["seconds"]}};
      for (int i : j["lineage"]) {
        const auto& c = j["candidates"][i];
        out["lineage"].push_back({{"index", i}, {"stage", c["stage"]}, {"settings", c["settings"]}, {"metrics", c["metrics"]}});
      }
      std::cout << out.dump(2) << "\n";
      return;
    }
    std::printf("%-4s %-10s %-44s %10s %8s %10s %10s\n", "#", "stage", "settings", "validation", "drop", "bytes", "ms");
    for (int i : j["lineage"]) {
      const auto& c = j["candidates"][i];
      const auto& m = c["metrics"];
      std::string s;
      for (const auto& [k, v] : c["settings"].items())
        if (k != "seed" && k != "batch") s += (s.empty() ? "" : " ") + k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
      if (s.size() > 44) s = s.substr(0, 41) + "...";
      std::printf("%-4d %-10s %-44s %9.2f%% %8.2f %10lld %10.3f\n", i, c["stage"].get<std::string>().c_str(), s.c_str(),
                  100 * m["accuracy"].get<double>(), m.value("drop", 0.0), m["bytes"].get<long long>(),
                  m["latency_ms"].get<double>());
    }
    const std::string split = fo["split"];
    std::printf("\n%zu candidates in %.0f s; budget %s\n", j["candidates"].size(), j["seconds"].get<double>(),
                j["budget_met"].get<bool>() ? "met" : "NOT met");
    for (const auto& n : j["notes"]) std::printf("note: %s\n", n.get<std::string>().c_str());
    const double ob = fo["bytes"], cb = fc["bytes"];
    std::printf("%-22s %12s %12s\n", "", "original", "result");
    std::printf("%-22s %12lld %12lld  (%.1fx smaller)\n", "bytes on disk", fo["bytes"].get<long long>(),
                fc["bytes"].get<long long>(), ob / std::max(1.0, cb));
    if (fo.contains("accuracy"))
      std::printf("%-22s %11.2f%% %11.2f%%  (%+.2f points)\n", (split + " accuracy").c_str(), 100 * fo["accuracy"].get<double>(),
                  100 * fc["accuracy"].get<double>(), 100 * (fc["accuracy"].get<double>() - fo["accuracy"].get<double>()));
    std::printf("%-22s %12.3f %12.3f  (%.2fx)\n", "latency ms, shrink", fo["latency_ms"].get<double>(),
                fc["latency_ms"].get<double>(), fo["latency_ms"].get<double>() / std::max(1e-9, fc["latency_ms"].get<double>()));
    if (fc.contains("ort_latency_ms"))
      std::printf("%-22s %12.3f %12.3f  (%.2fx)\n", "latency ms, ORT", fo["ort_latency_ms"].get<double>(),
                  fc["ort_latency_ms"].get<double>(),
                  fo["ort_latency_ms"].get<double>() / std::max(1e-9, fc["ort_latency_ms"].get<double>()));
    else
      std::printf("%-22s not measured: %s\n", "latency, ORT", j["ort"].get<std::string>().c_str());
    std::printf("                       (latency: median, batch %lld, %s)\n",
                static_cast<long long>(recipe.budget.latency_batch), "after the inference passes");
    std::printf("wrote %s/model.onnx, %s/report.html (and report.json, candidates/)\n", o.outdir.c_str(), o.outdir.c_str());
  });
}

}  // namespace shrink::cli
