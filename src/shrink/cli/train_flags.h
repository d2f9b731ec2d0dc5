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
};

// A zoo model built for the data's image shape and class count (`classes` > 0: that
// many, e.g. a teacher's for unlabeled data), or an imported ONNX file.
// The zoo's shape options (width, depth, heads) come from `flags`.
ir::Graph model_from_flag(const std::string& flag, const std::string& model, const data::Dataset& train_set,
                          const TrainFlags& flags, uint64_t seed, int64_t classes = 0);

}  // namespace shrink::cli
