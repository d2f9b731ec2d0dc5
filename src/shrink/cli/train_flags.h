// The training flags shared by the subcommands that train (train, distill) and the
// model argument: a zoo name or an ONNX file.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "shrink/data/dataset.h"
#include "shrink/ir/graph.h"
#include "shrink/train/trainer.h"

namespace shrink::cli {

struct TrainFlags {
  train::TrainOptions train;
  std::string milestones;
  double width = 1.0;
  int64_t depth = 0, heads = 0;  // vit's
  bool no_keep_best = false, augment = false;
  // Adds --epochs, --batch, --optimizer, --lr, ..., --checkpoint, --resume to cmd.
  void add_to(CLI::App* cmd);
  // The options as given (progress bars off for --json output).
  train::TrainOptions resolve(bool json) const;
  // The zoo's vit trains with a transformer's recipe, AdamW at lr 0.001 with weight decay
  // 0.05 (SGD at 0.05 left it 2 points lower in 10 epochs), unless --optimizer, --lr or
  // --weight-decay is given; true when it applied.
  bool apply_model_recipe(const std::string& model, train::TrainOptions& o) const;

 private:
  CLI::Option *optimizer_ = nullptr, *lr_ = nullptr, *weight_decay_ = nullptr;
};

// A zoo model built for the data's image shape and class count (`classes` > 0: that
// many, e.g. a teacher's for unlabeled data), or an imported ONNX file.
// The zoo's shape options (width, depth, heads) come from `flags`.
ir::Graph model_from_flag(const std::string& flag, const std::string& model, const data::Dataset& train_set,
                          const TrainFlags& flags, uint64_t seed, int64_t classes = 0);

}  // namespace shrink::cli
