// shrink eval MODEL: accuracy (top-1, and top-5 for more than 10 classes), loss,
// per-class accuracy and confusion matrix; with --reference, agreement with another
// model on the same inputs (labels not needed).
#include <cmath>
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
    std::string model, reference;
    int64_t batch = 256;
    bool json = false;
    DataOptions data;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Accuracy, loss, per-class accuracy and confusion matrix on the test set, or agreement with a reference model");
  cmd->add_option("model", opt->model, "ONNX model")->required();
  cmd->add_option("--reference", opt->reference,
                  "ONNX model to compare with (e.g. the original): top-1 agreement, mean KL and output SNR on the same "
                  "inputs, labels not needed");
  opt->data.add_to(cmd);
  cmd->add_option("--batch", opt->batch, "batch size")->check(positive())->capture_default_str();
  cmd->add_flag("--json", opt->json, "print JSON");
  cmd->callback([opt] {
    ir::Graph g = onnx_io::import_model(opt->model);
    opt->data.apply_to(g);
    data::Dataset test = opt->data.load(false, &g);
    if (!opt->reference.empty()) {
      ir::Graph ref = onnx_io::import_model(opt->reference);
      // The reference is fed as the model is unless its own metadata says otherwise.
      opt->data.apply_to(ref);
      for (const char* key : {"shrink.input_mean", "shrink.input_std", "shrink.resize", "shrink.crop", "shrink.channels",
                              "shrink.layout"})
        if (!ref.metadata.count(key) && g.metadata.count(key)) ref.metadata[key] = g.metadata.at(key);
      train::Agreement a = train::compare(g, ref, test, opt->batch);
      nlohmann::json j = {{"model", opt->model}, {"reference", opt->reference}, {"dataset", test.name},
                          {"samples", a.samples}, {"agreement", a.agreement}, {"kl", a.kl},
                          {"snr_db", std::isfinite(a.snr_db) ? nlohmann::json(a.snr_db) : nlohmann::json("inf")},
                          {"seconds", a.seconds}};
      if (test.labeled()) {
        train::EvalResult r = train::evaluate(g, test, opt->batch), rr = train::evaluate(ref, test, opt->batch);
        j["accuracy"] = r.accuracy;
        j["reference_accuracy"] = rr.accuracy;
      }
      if (opt->json) {
        std::cout << j.dump(2) << "\n";
        return;
      }
      std::printf("%s against %s on %s (%ld samples): top-1 agreement %.2f%%, mean KL %.5f, SNR %.1f dB, %.2f s\n",
                  opt->model.c_str(), opt->reference.c_str(), test.name.c_str(), static_cast<long>(a.samples),
                  100 * a.agreement, a.kl, a.snr_db, a.seconds);
      if (test.labeled())
        std::printf("accuracy %.2f%% (reference %.2f%%)\n", 100 * j["accuracy"].get<double>(),
                    100 * j["reference_accuracy"].get<double>());
      return;
    }
    train::EvalResult r = train::evaluate(g, test, opt->batch);
    if (opt->json) {
      nlohmann::json j = {{"model", opt->model}, {"dataset", test.name}, {"samples", r.samples},
                          {"accuracy", r.accuracy}, {"loss", r.loss}, {"per_class_accuracy", r.per_class_accuracy},
                          {"confusion", r.confusion}, {"seconds", r.seconds}};
      if (r.top5_accuracy >= 0) j["top5_accuracy"] = r.top5_accuracy;
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::printf("%s on %s (%ld images): accuracy %.2f%%", opt->model.c_str(), test.name.c_str(),
                static_cast<long>(r.samples), 100 * r.accuracy);
    if (r.top5_accuracy >= 0) std::printf(" (top-5 %.2f%%)", 100 * r.top5_accuracy);
    std::printf(", loss %.4f, %.2f s\n", r.loss, r.seconds);
    std::printf("per class:");
    for (size_t i = 0; i < r.per_class_accuracy.size(); ++i) std::printf(" %zu:%.1f%%", i, 100 * r.per_class_accuracy[i]);
    if (r.confusion.size() <= 20) {
      std::printf("\nconfusion (rows: true class, columns: predicted):\n");
      for (const auto& row : r.confusion) {
        for (int64_t v : row) std::printf(" %5ld", static_cast<long>(v));
        std::printf("\n");
      }
    } else {
      std::printf("\n(confusion matrix of %zu classes: see --json)\n", r.confusion.size());
    }
  });
}

}  // namespace shrink::cli
