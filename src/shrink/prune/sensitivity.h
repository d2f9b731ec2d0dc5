// Pruning sensitivity analysis: each prunable layer pruned alone at a sweep of
// sparsities (the rest of the model dense), with test accuracy at each point. Layers
// whose accuracy falls early deserve a smaller share of the pruning.
#pragma once
#include <string>
#include <vector>

#include "shrink/data/dataset.h"
#include "shrink/ir/graph.h"

namespace shrink::prune {

struct SensitivityOptions {
  std::vector<double> sparsities = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};
  std::string method = "l1";  // l1 or random
  uint64_t seed = 0;
  std::vector<std::string> layers;  // empty: every prunable layer
  bool progress = true;
};

struct LayerSensitivity {
  std::string node;
  int64_t weights = 0;
  std::vector<double> accuracy;  // one per sparsity
};

struct SensitivityReport {
  double dense_accuracy = 0;
  std::vector<double> sparsities;
  std::vector<LayerSensitivity> layers;
};

SensitivityReport sensitivity(const ir::Graph& graph, const data::Dataset& test, const SensitivityOptions& o);

}  // namespace shrink::prune
