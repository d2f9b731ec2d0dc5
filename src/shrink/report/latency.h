// Latency of shrink's executor on a graph, with random inputs of the declared shapes
// (a symbolic batch set to `batch`): median, p90 and minimum over timed runs.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "shrink/ir/graph.h"

namespace shrink::report {

// Mean time of one node per run (the profile).
struct NodeTime {
  std::string node, op;
  double ms = 0;
};

struct Latency {
  std::vector<NodeTime> profile;  // with profile=true: every node, in execution order
  int64_t batch = 1;
  int runs = 0;
  double median_ms = 0, p90_ms = 0, min_ms = 0;
  double samples_per_s() const { return median_ms > 0 ? batch / (median_ms / 1000.0) : 0; }
};

// Sizes for named symbolic input dimensions other than the batch (ONNX Runtime's free
// dimension override), e.g. {"sequence", 128}: a process-wide setting (`shrink --dim`).
void set_dim_sizes(const std::map<std::string, int64_t>& sizes);

// Seeded random inputs of the graph's declared shapes: a symbolic leading dimension (and
// any dimension named as the first input's leading one) is `batch`, other symbolic
// dimensions take their size from set_dim_sizes; error naming the dimension otherwise.
std::vector<at::Tensor> sample_inputs(const ir::Graph& graph, int64_t batch);

// With profile, `runs` more runs time each node (kept apart: the timers cost a little).
Latency measure_latency(const ir::Graph& graph, int64_t batch, int runs, int warmup, bool profile = false);

// Latency of some of a graph's nodes alone (e.g. one layer, or the factors that replaced
// it): a graph of just those nodes, in the given order, reading what they take from
// outside as inputs (the values the whole graph computes for sample_inputs at `batch`)
// and giving what no listed node consumes as outputs.
Latency measure_nodes_latency(const ir::Graph& graph, const std::vector<std::string>& nodes, int64_t batch, int runs,
                              int warmup);

}  // namespace shrink::report
