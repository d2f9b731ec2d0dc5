// shrink eval MODEL: accuracy, loss, per-class accuracy and confusion matrix.
#include <iostream>
#include <nlohmann/json.hpp>

#include "shrink/cli/commands.h"
#include "shrink/cli/validators.h"
#include "shrink/cli/data_options.h"
#include "shrink/onnx/import.h"
#include "shrink/train/trainer.h"

namespace shrink::cli {

void add_eval_command(CLI::App& app) {
  struct Options {
    std::string model;
    int64_t batch = 256;
    bool json = false;
    DataOptions data;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("eval", "Accuracy, loss, per-class accuracy and confusion matrix on the test set");
  cmd->add_option("model", opt->model, "ONNX model")->required();
  opt->data.add_to(cmd);
  cmd->add_option("--batch", opt->batch, "batch size")->check(positive())->capture_default_str();
  cmd->add_flag("--json", opt->json, "print JSON");
  cmd->callback([opt] {
    ir::Graph g = onnx_io::import_model(opt->model);
    data::Dataset test = opt->data.load(false);
    train::EvalResult r = train::evaluate(g, test, opt->batch);
    if (opt->json) {
      nlohmann::json j = {{"model", opt->model}, {"dataset", test.name}, {"samples", r.samples},
                          {"accuracy", r.accuracy}, {"loss", r.loss}, {"per_class_accuracy", r.per_class_accuracy},
                          {"confusion", r.confusion}, {"seconds", r.seconds}};
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::printf("%s on %s (%ld images): accuracy %.2f%%, loss %.4f, %.2f s\n", opt->model.c_str(), test.name.c_str(),
                static_cast<long>(r.samples), 100 * r.accuracy, r.loss, r.seconds);
    std::printf("per class:");
    for (size_t i = 0; i < r.per_class_accuracy.size(); ++i) std::printf(" %zu:%.1f%%", i, 100 * r.per_class_accuracy[i]);
    std::printf("\nconfusion (rows: true class, columns: predicted):\n");
    for (const auto& row : r.confusion) {
      for (int64_t v : row) std::printf(" %5ld", static_cast<long>(v));
      std::printf("\n");
    }
  });
}

}  // namespace shrink::cli
