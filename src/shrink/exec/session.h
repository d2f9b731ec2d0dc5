// Runs a graph with ATen. Kernels and value slots are resolved once at creation;
// a run walks a flat list of steps indexing a slot vector (no name lookups).
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "shrink/ir/graph.h"
#include "shrink/ops/registry.h"

namespace shrink::exec {

struct SessionOptions {
  bool training = false;           // batch statistics, dropout, gradients to parameters
  std::vector<std::string> taps;   // intermediate values to keep after each run
  bool profile = false;            // time every node (see Session::profile)
};

// Time spent in one node over the runs since the session was made (profile option).
struct NodeProfile {
  const ir::Node* node;
  double total_ms = 0;
  int64_t runs = 0;
};

class Session {
 public:
  // The graph must outlive the session; rebuild the session after editing the graph.
  explicit Session(const ir::Graph& graph, SessionOptions options = {});

  // Inputs in graph-input order; checked against the declared dtype and shape.
  std::vector<at::Tensor> run(const std::vector<at::Tensor>& inputs);

  // Value of a tap (by its position in options.taps, or by name) from the last run.
  const at::Tensor& tap(size_t index) const { return taps_.at(index); }
  const at::Tensor& tap(const std::string& name) const;

  void set_training(bool training) { context_.training = training; }
  bool training() const { return context_.training; }
  const ir::Graph& graph() const { return *graph_; }
  // Per-node times, in execution order (empty unless options.profile).
  const std::vector<NodeProfile>& profile() const { return profile_; }

 private:
  struct Step {
    ops::Kernel kernel;
    std::vector<int> inputs;   // slot per input, -1 when absent
    std::vector<int> outputs;  // slot per output, -1 when absent
    std::vector<int> release;  // slots whose last use is this step
    const ir::Node* node;
  };
  int slot_of(const ir::Value* value) const;
  void check_input(size_t index, const at::Tensor& t) const;

  const ir::Graph* graph_;
  ops::KernelContext context_;
  std::unordered_map<const ir::Value*, int> slot_index_;
  std::vector<at::Tensor> slots_;
  std::vector<int> fixed_slots_;  // initializers (kept between runs)
  std::vector<int> input_slots_, output_slots_, tap_slots_;
  std::vector<std::string> tap_names_;
  std::vector<at::Tensor> taps_;
  std::vector<Step> steps_;
  std::vector<NodeProfile> profile_;
};

// Convenience: one eval-mode run.
std::vector<at::Tensor> run_once(const ir::Graph& graph, const std::vector<at::Tensor>& inputs);

}  // namespace shrink::exec
