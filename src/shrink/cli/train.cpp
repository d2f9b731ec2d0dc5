// shrink train --model NAME|FILE.onnx [--epochs N] ... -o OUT.onnx
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "shrink/cli/commands.h"
#include "shrink/cli/data_options.h"
#include "shrink/core/error.h"
#include "shrink/onnx/export.h"
#include "shrink/onnx/import.h"
#include "shrink/train/trainer.h"
#include "shrink/zoo/zoo.h"

namespace shrink::cli {

void add_train_command(CLI::App& app) {
  struct Options {
    std::string model, output, milestones;
    double width = 1.0;
    bool json = false, no_keep_best = false, augment = false;
    DataOptions data;
    train::TrainOptions train;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("train", "Train a zoo model (or fine-tune an ONNX model) and export it");
  cmd->add_option("-m,--model", opt->model, "zoo model name (see `shrink zoo`) or an ONNX file to fine-tune")->required();
  cmd->add_option("-o,--output", opt->output, "trained model (ONNX)")->required();
  opt->data.add_to(cmd);
  auto& t = opt->train;
  cmd->add_option("--epochs", t.epochs, "epochs")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--batch", t.batch_size, "batch size")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--optimizer", t.optimizer, "sgd, adam or adamw")->check(CLI::IsMember({"sgd", "adam", "adamw"}))->capture_default_str();
  cmd->add_option("--lr", t.lr, "base learning rate")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--momentum", t.momentum, "SGD momentum")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  cmd->add_flag("--nesterov", t.nesterov, "Nesterov momentum");
  cmd->add_option("--weight-decay", t.weight_decay, "L2 weight decay (decoupled for adamw)")->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--schedule", t.schedule.kind, "constant, step, multistep or cosine")->check(CLI::IsMember({"constant", "step", "multistep", "cosine"}))->capture_default_str();
  cmd->add_option("--step-size", t.schedule.step_size, "step schedule: epochs between decays")->capture_default_str();
  cmd->add_option("--milestones", opt->milestones, "multistep schedule: comma-separated epochs");
  cmd->add_option("--gamma", t.schedule.gamma, "step/multistep decay factor")->capture_default_str();
  cmd->add_option("--warmup", t.schedule.warmup_epochs, "linear warm-up epochs")->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--label-smoothing", t.label_smoothing, "cross-entropy label smoothing")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  cmd->add_option("--seed", t.seed, "seed for initialisation, shuffling and augmentation")->capture_default_str();
  cmd->add_flag("--augment", opt->augment, "random crop (4-pixel padding) and horizontal flip");
  cmd->add_option("--width", opt->width, "zoo width multiplier")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--checkpoint", t.checkpoint, "checkpoint file, written every epoch and on Ctrl-C");
  cmd->add_flag("--resume", t.resume, "continue from --checkpoint");
  cmd->add_option("--l1", opt->train.l1, "L1 sparsity regularisation on Conv/Gemm/MatMul weights (adds l1*sign(w) to the gradient)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--l2", opt->train.l2, "L2 regularisation on Conv/Gemm/MatMul weights (adds l2*w to the gradient)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--bn-l1", opt->train.bn_l1, "L1 on BatchNorm scales (network slimming, Liu et al. 2017)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--shards", opt->train.shards,
                  "split each batch across this many threads, each running the whole step (0: automatic, "
                  "for small conv nets without BatchNorm or Dropout; 1: never)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--no-keep-best", opt->no_keep_best, "keep the last epoch's weights instead of the best");
  cmd->add_flag("--json", opt->json, "print a JSON summary (no progress bars)");
  cmd->callback([opt] {
    train::TrainOptions o = opt->train;
    o.keep_best = !opt->no_keep_best;
    o.progress = !opt->json;
    if (opt->augment) o.crop_padding = 4, o.horizontal_flip = true;
    std::stringstream ms(opt->milestones);
    for (std::string m; std::getline(ms, m, ',');) o.schedule.milestones.push_back(std::stoi(m));
    data::Dataset train_set = opt->data.load(true), test_set = opt->data.load(false);
    ir::Graph graph;  // with --resume the trainer takes the model from the checkpoint
    if (!o.resume && zoo::has_model(opt->model)) {
      zoo::ModelOptions mo;
      mo.input = std::vector<int64_t>(train_set.images.sizes().begin() + 1, train_set.images.sizes().end());
      mo.classes = train_set.classes;
      mo.width = opt->width;
      mo.seed = o.seed;
      graph = zoo::build_model(opt->model, mo);
    } else if (!o.resume) {
      SHRINK_CHECK(std::filesystem::exists(opt->model), "--model: '", opt->model,
                   "' is neither a zoo model (see `shrink zoo`) nor an existing ONNX file");
      graph = onnx_io::import_model(opt->model);
    }
    train::TrainResult r = train::train(graph, train_set, test_set, o);
    if (r.interrupted) {
      std::cerr << "shrink: interrupted" << (o.checkpoint.empty() ? "" : "; resume with --resume --checkpoint " + o.checkpoint) << "\n";
      std::exit(130);
    }
    onnx_io::export_model(graph, opt->output);
    train::EvalResult final_eval = train::evaluate(graph, test_set);
    nlohmann::json j = {{"model", opt->model}, {"output", opt->output}, {"dataset", opt->data.dataset},
                        {"epochs", o.epochs}, {"seed", o.seed}, {"seconds", r.seconds},
                        {"test_accuracy", final_eval.accuracy}, {"test_loss", final_eval.loss},
                        {"best_epoch", r.best_epoch}, {"shards", r.shards}};
    for (const auto& e : r.history)
      j["history"].push_back({{"epoch", e.epoch}, {"train_loss", e.train_loss}, {"train_accuracy", e.train_accuracy},
                              {"test_accuracy", e.test_accuracy}, {"lr", e.lr}, {"images_per_second", e.images_per_second}});
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
