#include "shrink/cli/train_flags.h"
#include "shrink/cli/validators.h"

#include <filesystem>
#include <sstream>

#include "shrink/core/error.h"
#include "shrink/core/parse.h"
#include "shrink/onnx/import.h"
#include "shrink/zoo/zoo.h"

namespace shrink::cli {

void TrainFlags::add_to(CLI::App* cmd) {
  auto& t = train;
  cmd->add_option("--epochs", t.epochs, "epochs")->check(positive())->capture_default_str();
  cmd->add_option("--batch", t.batch_size, "batch size")->check(positive())->capture_default_str();
  optimizer_ = cmd->add_option("--optimizer", t.optimizer, "sgd, adam or adamw")->check(CLI::IsMember({"sgd", "adam", "adamw"}))->capture_default_str();
  lr_ = cmd->add_option("--lr", t.lr, "base learning rate (vit: 0.001 with AdamW unless --optimizer, --lr or --weight-decay)")->check(positive())->capture_default_str();
  cmd->add_option("--momentum", t.momentum, "SGD momentum")->check(range(0.0, 1.0))->capture_default_str();
  cmd->add_flag("--nesterov", t.nesterov, "Nesterov momentum");
  weight_decay_ = cmd->add_option("--weight-decay", t.weight_decay, "L2 weight decay (decoupled for adamw)")->check(non_negative())->capture_default_str();
  cmd->add_option("--schedule", t.schedule.kind, "constant, step, multistep or cosine")->check(CLI::IsMember({"constant", "step", "multistep", "cosine"}))->capture_default_str();
  cmd->add_option("--step-size", t.schedule.step_size, "step schedule: epochs between decays")->capture_default_str();
  cmd->add_option("--milestones", milestones, "multistep schedule: comma-separated epochs");
  cmd->add_option("--gamma", t.schedule.gamma, "step/multistep decay factor")->capture_default_str();
  cmd->add_option("--warmup", t.schedule.warmup_epochs, "linear warm-up epochs")->check(non_negative())->capture_default_str();
  cmd->add_option("--label-smoothing", t.label_smoothing, "cross-entropy label smoothing")->check(range(0.0, 1.0))->capture_default_str();
  cmd->add_option("--seed", t.seed, "seed for initialisation, shuffling and augmentation")->capture_default_str();
  cmd->add_flag("--augment", augment, "random crop (4-pixel padding) and horizontal flip");
  cmd->add_option("--width", width, "zoo width multiplier")->check(positive())->capture_default_str();
  cmd->add_option("--depth", depth, "vit: encoder blocks (default 4)")->check(range(1, 1000));
  cmd->add_option("--heads", heads, "vit: attention heads (default 4; 64 x --width must divide by it)")
      ->check(range(1, 1000));
  cmd->add_option("--checkpoint", t.checkpoint, "checkpoint file, written every epoch and on Ctrl-C");
  cmd->add_flag("--resume", t.resume, "continue from --checkpoint");
  cmd->add_option("--shards", t.shards,
                  "split each batch across this many threads, each running the whole step (0: automatic, "
                  "for small conv nets without BatchNorm or Dropout; 1: never)")
      ->check(non_negative());
  cmd->add_flag("--no-keep-best", no_keep_best, "keep the last epoch's weights instead of the best");
}

train::TrainOptions TrainFlags::resolve(bool json) const {
  train::TrainOptions o = train;
  o.keep_best = !no_keep_best;
  o.progress = !json;
  if (augment) o.crop_padding = 4, o.horizontal_flip = true;
  std::stringstream ms(milestones);
  for (std::string m; std::getline(ms, m, ',');) {
    o.schedule.milestones.push_back(static_cast<int>(parse_int(m, "--milestones", 0, 1000000)));
  }
  return o;
}

bool TrainFlags::apply_model_recipe(const std::string& model, train::TrainOptions& o) const {
  if (model != "vit" || optimizer_->count() || lr_->count() || weight_decay_->count()) return false;
  o.optimizer = "adamw";
  o.lr = 0.001;
  o.weight_decay = 0.05;
  return true;
}

ir::Graph model_from_flag(const std::string& flag, const std::string& model, const data::Dataset& train_set,
                          const TrainFlags& flags, uint64_t seed, int64_t classes) {
  SHRINK_CHECK(model == "vit" || (flags.depth == 0 && flags.heads == 0), "--depth and --heads shape the zoo's vit, not '",
               model, "'");
  if (zoo::has_model(model)) {
    zoo::ModelOptions mo;
    SHRINK_CHECK(train_set.labeled() || classes > 0, flag, ": a zoo model is built for the data's classes, but '", train_set.name,
                 "' has no labels");
    SHRINK_CHECK(!train_set.raw() && train_set.sample_shape().size() == 3, flag, ": a zoo model takes images, but '",
                 train_set.name, "' holds ", c10::IntArrayRef(train_set.sample_shape()), " float inputs");
    mo.input = train_set.sample_shape();
    mo.classes = classes > 0 ? classes : train_set.classes;
    mo.width = flags.width;
    mo.depth = flags.depth;
    mo.heads = flags.heads;
    mo.seed = seed;
    return zoo::build_model(model, mo);
  }
  SHRINK_CHECK(std::filesystem::exists(model), flag, ": '", model,
               "' is neither a zoo model (see `shrink zoo`) nor an existing ONNX file");
  return onnx_io::import_model(model);
}

}  // namespace shrink::cli
