// shrink sensitivity MODEL [--sparsities 0.1,...] [--method l1|random] [--samples N]:
// accuracy of the model with each layer pruned alone at each sparsity.
#include <iostream>
#include <numeric>
#include <nlohmann/json.hpp>
#include <sstream>

#include "shrink/cli/commands.h"
#include "shrink/cli/validators.h"
#include "shrink/cli/data_options.h"
#include "shrink/core/error.h"
#include "shrink/core/parse.h"
#include "shrink/onnx/import.h"
#include "shrink/prune/sensitivity.h"

namespace shrink::cli {

void add_sensitivity_command(CLI::App& app) {
  struct Options {
    std::string input, sparsities = "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9", layers;
    prune::SensitivityOptions s;
    int64_t samples = 0;
    bool json = false;
    DataOptions data;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("sensitivity", "Accuracy with each layer pruned alone at a sweep of sparsities");
  cmd->add_option("model", opt->input, "ONNX model")->required();
  cmd->add_option("--sparsities", opt->sparsities, "comma-separated sparsities in [0, 1)")->capture_default_str();
  cmd->add_option("--method", opt->s.method, "l1 or random")->check(CLI::IsMember({"l1", "random"}))->capture_default_str();
  cmd->add_option("--layers", opt->layers, "comma-separated layer (node) names (default: every prunable layer)");
  cmd->add_option("--samples", opt->samples, "evaluate on the first N test images (0: all)")->check(non_negative());
  cmd->add_option("--seed", opt->s.seed, "seed for random pruning")->capture_default_str();
  opt->data.add_to(cmd);
  cmd->add_flag("--json", opt->json, "print JSON (no progress bar)");
  cmd->callback([opt] {
    Options& o = *opt;
    o.s.sparsities.clear();
    std::stringstream in(o.sparsities);
    for (std::string item; std::getline(in, item, ',');) {
      o.s.sparsities.push_back(parse_real(item, "--sparsities", 0.0, 1.0));
    }
    std::stringstream ln(o.layers);
    for (std::string item; std::getline(ln, item, ',');)
      if (!item.empty()) o.s.layers.push_back(item);
    o.s.progress = !o.json;
    ir::Graph g = onnx_io::import_model(o.input);
    o.data.apply_to(g);
    data::Dataset test = o.data.load(false, &g);
    if (o.samples > 0 && o.samples < test.size()) {
      std::vector<int64_t> first(o.samples);
      std::iota(first.begin(), first.end(), 0);
      test = test.subset(first, "");
    }
    prune::SensitivityReport r = prune::sensitivity(g, test, o.s);
    if (o.json) {
      nlohmann::json j = {{"model", o.input}, {"samples", test.size()}, {"method", o.s.method},
                          {"dense_accuracy", r.dense_accuracy}, {"sparsities", r.sparsities}};
      for (const auto& l : r.layers)
        j["layers"].push_back({{"node", l.node}, {"weights", l.weights}, {"accuracy", l.accuracy}});
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::printf("%s on %lld test images, dense accuracy %.2f%%; accuracy with one layer pruned (%s):\n",
                o.input.c_str(), static_cast<long long>(test.size()), 100 * r.dense_accuracy, o.s.method.c_str());
    std::printf("%-24s %9s", "layer", "weights");
    for (double s : r.sparsities) std::printf(" %6.0f%%", 100 * s);
    std::printf("\n");
    for (const auto& l : r.layers) {
      std::printf("%-24s %9lld", l.node.c_str(), static_cast<long long>(l.weights));
      for (double a : l.accuracy) std::printf(" %7.2f", 100 * a);
      std::printf("\n");
    }
  });
}

}  // namespace shrink::cli
