// shrink train --model NAME|FILE.onnx [--epochs N] ... -o OUT.onnx
#include <iostream>
#include <nlohmann/json.hpp>

#include "shrink/cli/commands.h"
#include "shrink/cli/output_flags.h"
#include "shrink/zoo/zoo.h"
#include "shrink/cli/validators.h"
#include "shrink/cli/data_options.h"
#include "shrink/cli/train_flags.h"
#include "shrink/core/error.h"
#include "shrink/onnx/export.h"
#include "shrink/onnx/import.h"
#include "shrink/train/trainer.h"

namespace shrink::cli {

void add_train_command(CLI::App& app) {
  struct Options {
    onnx_io::Storage storage = onnx_io::Storage::Compact;
    std::string model, output;
    bool json = false;
    int64_t holdout = 0;
    DataOptions data;
    TrainFlags flags;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("train", "Train a zoo model (or fine-tune an ONNX model) and export it");
  cmd->add_option("-m,--model", opt->model, "zoo model name (see `shrink zoo`) or an ONNX file to fine-tune")->required();
  cmd->add_option("-o,--output", opt->output, "trained model (ONNX)")->required();
  opt->data.add_to(cmd);
  opt->flags.add_to(cmd);
  cmd->add_option("--l1", opt->flags.train.l1, "L1 sparsity regularisation on Conv/Gemm/MatMul weights (adds l1*sign(w) to the gradient)")
      ->check(non_negative());
  cmd->add_option("--l2", opt->flags.train.l2, "L2 regularisation on Conv/Gemm/MatMul weights (adds l2*w to the gradient)")
      ->check(non_negative());
  cmd->add_option("--bn-l1", opt->flags.train.bn_l1, "L1 on BatchNorm scales (network slimming, Liu et al. 2017)")
      ->check(non_negative());
  cmd->add_option("--holdout", opt->holdout,
                  "leave this many training samples (seeded by --seed, at most a fifth) out of training and record it in "
                  "the model, so `shrink compress` scores candidates on samples the model never saw")
      ->check(non_negative());
  add_storage_flag(cmd, &opt->storage);
  cmd->add_flag("--json", opt->json, "print a JSON summary (no progress bars)");
  cmd->callback([opt] {
    train::TrainOptions o = opt->flags.resolve(opt->json);
    if (opt->flags.apply_model_recipe(opt->model, o) && !opt->json) {
      std::printf("vit: AdamW, lr 0.001, weight decay 0.05 (a transformer's recipe; --optimizer, --lr or --weight-decay "
                  "sets your own)\n");
      std::fflush(stdout);
    }
    // An ONNX model is read first: its input size decides an image folder's; a zoo
    // model is built for the data's image shape and class count.
    ir::Graph graph;  // with --resume the trainer takes the model from the checkpoint
    bool onnx = !o.resume && !zoo::has_model(opt->model);
    if (onnx) {
      graph = model_from_flag("--model", opt->model, data::Dataset{}, opt->flags, o.seed);
      opt->data.apply_to(graph);
    }
    data::Dataset train_set = opt->data.load(true, onnx ? &graph : nullptr);
    data::Dataset test_set = opt->data.load(false, onnx ? &graph : nullptr);
    if (!o.resume && !onnx) {
      graph = model_from_flag("--model", opt->model, train_set, opt->flags, o.seed);
      opt->data.apply_to(graph);
    }
    if (opt->holdout > 0) {
      SHRINK_CHECK(!o.resume, "--holdout with --resume: the checkpoint's model already records its hold-out");
      data::Dataset held;
      std::tie(train_set, held) = data::split_validation(train_set, opt->holdout, o.seed);
      graph.metadata["shrink.holdout"] = std::to_string(held.size()) + "," + std::to_string(o.seed);
    }
    train::TrainResult r = train::train(graph, train_set, test_set, o);
    if (r.interrupted) {
      std::cerr << "shrink: interrupted" << (o.checkpoint.empty() ? "" : "; resume with --resume --checkpoint " + o.checkpoint) << "\n";
      std::exit(130);
    }
    onnx_io::export_model(graph, opt->output, onnx_io::stored_as(opt->storage));
    train::EvalResult final_eval = train::evaluate(graph, test_set);
    nlohmann::json j = {{"model", opt->model}, {"output", opt->output}, {"dataset", opt->data.dataset},
                        {"epochs", o.epochs}, {"seed", o.seed}, {"seconds", r.seconds},
                        {"data_wait_seconds", r.data_wait_seconds},
                        {"test_accuracy", final_eval.accuracy}, {"test_loss", final_eval.loss},
                        {"best_epoch", r.best_epoch}, {"shards", r.shards},
                        {"compute_threads", r.compute_threads}, {"world_size", r.world_size},
                        {"steps", r.steps}, {"comm_seconds", r.comm_seconds}};
    for (const auto& e : r.history)
      j["history"].push_back({{"epoch", e.epoch}, {"train_loss", e.train_loss}, {"train_accuracy", e.train_accuracy},
                              {"test_accuracy", e.test_accuracy}, {"test_loss", e.test_loss}, {"lr", e.lr},
                              {"images_per_second", e.images_per_second}});
    if (opt->json) {
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::printf("trained %s on %s for %d epochs (seed %lu) in %.1f s: test accuracy %.2f%% (best epoch %d), wrote %s\n",
                opt->model.c_str(), train_set.name.c_str(), o.epochs, static_cast<unsigned long>(o.seed), r.seconds,
                100 * final_eval.accuracy, r.best_epoch, opt->output.c_str());
  });
}

}  // namespace shrink::cli
