#include "shrink/prune/sensitivity.h"

#include <algorithm>

#include "shrink/core/error.h"
#include "shrink/core/progress.h"
#include "shrink/prune/unstructured.h"
#include "shrink/train/trainer.h"

namespace shrink::prune {

SensitivityReport sensitivity(const ir::Graph& graph, const data::Dataset& test, const SensitivityOptions& o) {
  SHRINK_CHECK(!o.sparsities.empty(), "--sparsities: give at least one sparsity");
  for (double s : o.sparsities) SHRINK_CHECK(s >= 0.0 && s < 1.0, "--sparsities: ", s, " is not in [0, 1)");
  SensitivityReport r;
  r.sparsities = o.sparsities;
  // Without labels: the top-1 agreement with the dense model (itself: 1).
  auto score = [&](const ir::Graph& g) {
    return test.labeled() ? train::evaluate(g, test).accuracy : train::compare(g, graph, test).agreement;
  };
  r.dense_accuracy = test.labeled() ? score(graph) : 1.0;

  std::vector<std::string> names;
  for (const auto& w : prunable_weights(graph))
    if (o.layers.empty() || std::find(o.layers.begin(), o.layers.end(), w.node->name) != o.layers.end())
      names.push_back(w.node->name);
  for (const auto& n : o.layers)
    SHRINK_CHECK(std::find(names.begin(), names.end(), n) != names.end(), "--layers: '", n,
                 "' is not a prunable layer of the model");
  SHRINK_CHECK(!names.empty(), "the model has no prunable layer (Conv, ConvTranspose, Gemm or MatMul with a trained weight)");

  ProgressBar bar("sensitivity", static_cast<int64_t>(names.size() * o.sparsities.size()), "run", o.progress);
  int64_t done = 0;
  for (const auto& name : names) {
    LayerSensitivity ls;
    ls.node = name;
    for (double s : o.sparsities) {
      ir::Graph g = graph.clone();
      UnstructuredOptions po;
      po.method = o.method;
      po.seed = o.seed;
      po.amount = s;
      po.layers = {name};
      // Sparsity of the layer, not of what is alive: start from the dense model.
      std::vector<LayerReport> rep = prune_unstructured(g, po);
      ls.weights = rep.at(0).total;
      ls.accuracy.push_back(score(g));
      ++done;
      bar.update(done, done, name + " at " + std::to_string(static_cast<int>(s * 100 + 0.5)) + "%");
    }
    r.layers.push_back(ls);
  }
  bar.finish("");
  return r;
}

}  // namespace shrink::prune
