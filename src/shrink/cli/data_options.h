// --data / --dataset, shared by the subcommands that read a dataset.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "shrink/data/dataset.h"

namespace shrink::cli {

struct DataOptions {
  std::string dir;                       // "" = SHRINK_DATA or the Debian package's location
  std::string dataset = "fashion-mnist";
  void add_to(CLI::App* cmd) {
    cmd->add_option("--data", dir, "dataset directory (default: $SHRINK_DATA, else the dataset-fashion-mnist package's)");
    cmd->add_option("--dataset", dataset, "fashion-mnist, mnist (IDX), cifar10 or cifar100 (binary batches)")
        ->capture_default_str();
  }
  data::Dataset load(bool train) const { return data::load_dataset(dataset, dir.empty() ? data::default_data_dir() : dir, train); }
};

}  // namespace shrink::cli
