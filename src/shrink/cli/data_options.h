// --data / --dataset and the preprocessing flags, shared by the subcommands that
// read data. The preprocessing a model was trained with lives in its metadata;
// flags given here override it and are written back to the model (so a model
// exported afterwards carries what it was fed with).
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "shrink/cli/validators.h"
#include "shrink/core/error.h"
#include "shrink/core/parse.h"
#include "shrink/data/dataset.h"
#include "shrink/ir/graph.h"
#include "shrink/train/trainer.h"

namespace shrink::cli {

struct DataOptions {
  std::string dir;  // "" = SHRINK_DATA or the Debian package's location
  std::string dataset = "auto";
  int64_t resize = -1, crop = -1;  // -1: not given
  std::string mean, std, channels, layout;
  double val_fraction = 0;
  bool fast_decode = false;
  uint64_t seed = 0;

  void add_to(CLI::App* cmd) {
    cmd->add_option("--data", dir,
                    "data: an IDX or CIFAR directory, an image folder (class subfolders of JPEG/PNG files, optionally "
                    "under train/ and val/ or test/; or the images alone, unlabeled) or a .npy/.npz file (x: inputs, "
                    "y: labels) (default: $SHRINK_DATA, else the dataset-fashion-mnist package's)");
    cmd->add_option("--dataset", dataset, "what --data holds: auto (detected), fashion-mnist, mnist, cifar10, cifar100, folder, numpy")
        ->check(CLI::IsMember({"auto", "fashion-mnist", "mnist", "cifar10", "cifar100", "folder", "numpy"}))
        ->capture_default_str();
    cmd->add_option("--resize", resize, "images: shorter side to this many pixels (bilinear, antialiased)")->check(positive());
    cmd->add_option("--crop", crop, "images: centre crop to this size (random in training with --augment; "
                                    "default: the model's input size)")->check(positive());
    cmd->add_option("--mean", mean, "images: per-channel mean on [0, 1] pixels, e.g. 0.485,0.456,0.406 "
                                    "(default: the model's, else the data's)");
    cmd->add_option("--std", std, "images: per-channel std on [0, 1] pixels, e.g. 0.229,0.224,0.225");
    cmd->add_option("--channels", channels, "images: rgb, bgr or gray (default: the model's, else its input's channel count)")
        ->check(CLI::IsMember({"rgb", "bgr", "gray"}));
    cmd->add_option("--layout", layout, "the model's input layout: nchw or nhwc (default: the model's, else nchw)")
        ->check(CLI::IsMember({"nchw", "nhwc"}));
    cmd->add_flag("--fast-decode", fast_decode,
                  "images: decode JPEGs at 1/2, 1/4 or 1/8 scale when the resize allows (PIL's draft mode; faster on "
                  "large photos, no longer equal to torchvision's full decode)");
    cmd->add_option("--val-fraction", val_fraction,
                    "data with a single split: hold out this seeded fraction for evaluation, train on the rest")
        ->check(range(0.0, 0.99));
  }

  // The preprocessing: the model's (metadata) with the flags given over it.
  data::Preprocess preprocess(const ir::Graph* model) const {
    data::Preprocess p = model ? train::preprocess_of(*model) : data::Preprocess{};
    if (resize >= 0) p.resize = resize;
    if (crop >= 0) p.crop = crop;
    if (!channels.empty()) p.channels = data::parse_channels(channels);
    if (!layout.empty()) p.nhwc = layout == "nhwc";
    p.fast_decode = fast_decode;
    return p;
  }

  // Writes the flags given into the model's metadata (what it is fed with from now on).
  void apply_to(ir::Graph& model) const {
    train::store_preprocess(model, preprocess(&model));
    SHRINK_CHECK(mean.empty() == std.empty(), "--mean and --std go together (give both)");
    if (!mean.empty()) {
      data::Normalization n{parse_real_list(mean, "--mean"), parse_real_list(std, "--std")};
      SHRINK_CHECK(n.mean.size() == n.std.size(), "--mean has ", n.mean.size(), " values, --std ", n.std.size());
      for (double s : n.std) SHRINK_CHECK(s > 0, "--std: ", s, " is not positive");
      train::store_normalization(model, n);
    }
  }

  // The training or evaluation split, preprocessed for `model` (its input size and
  // channels decide an image folder's when the flags do not).
  data::Dataset load(bool train, const ir::Graph* model = nullptr) const {
    data::DataRequest r;
    r.path = dir.empty() ? data::default_data_dir() : dir;
    r.kind = dataset;
    r.train = train;
    r.preprocess = preprocess(model);
    if (model && model->inputs().size() == 1 && model->inputs()[0]->type.has_shape)
      r.model_input = model->inputs()[0]->type.dims;
    r.val_fraction = val_fraction;
    r.seed = seed;
    return data::load(r);
  }
};

}  // namespace shrink::cli
