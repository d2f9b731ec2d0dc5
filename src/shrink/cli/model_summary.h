// Before/after summaries shared by the compression subcommands (prune, factorize):
// parameters, non-zeros, bytes on disk, MACs, deployed latency and test accuracy.
#pragma once
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "shrink/data/dataset.h"
#include "shrink/ir/graph.h"
#include "shrink/report/latency.h"
#include "shrink/report/model_stats.h"

namespace shrink::cli {

struct Snapshot {
  report::ModelStats stats;
  int64_t file_bytes = 0;
  double accuracy = -1;  // < 0: not measured
  double top5_accuracy = -1;
  // Unlabeled data: how the compressed model agrees with the original (< 0: not measured).
  double agreement = -1, kl = -1, snr_db = 0;
  report::Latency latency;
  bool timed = true;  // false: --no-latency
};

// Latency as deployed: the exported file after the inference passes, batch 64.
report::Latency deployed_latency(const std::string& path);

// Stats, file size and (unless !latency) deployed latency of an ONNX file; accuracy
// left unmeasured.
Snapshot snapshot_of(const ir::Graph& g, const std::string& path, bool latency = true);

nlohmann::json snapshot_json(const Snapshot& s);

// The test-set figures of a model before compression: accuracy and top-5 (labeled
// data only; unlabeled data is measured after, against this model).
void measure_before(Snapshot& before, const ir::Graph& original, const data::Dataset& test);
// After: accuracy when the data has labels, else agreement with the original.
void measure_after(Snapshot& after, const ir::Graph& result, const ir::Graph& original, const data::Dataset& test);

// The before -> after rows (parameters, non-zeros, bytes, MACs, latency, accuracy).
void print_before_after(const Snapshot& before, const Snapshot& after);

}  // namespace shrink::cli
