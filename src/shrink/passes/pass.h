// A pass rewrites a graph in place. Not applying anywhere is a normal outcome
// (run returns false), never an error. Passes are registered by name and put
// together into pipelines of named stages.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "shrink/ir/graph.h"

namespace shrink::passes {

class Pass {
 public:
  virtual ~Pass() = default;
  virtual std::string name() const = 0;
  // Rewrites the graph; returns whether anything changed.
  virtual bool run(ir::Graph& graph) = 0;
};

// A pass made of a name and a function.
std::unique_ptr<Pass> make_pass(std::string name, std::function<bool(ir::Graph&)> fn);

struct StageResult {
  std::string pass;
  bool changed;
  size_t nodes_after;
};

class Pipeline {
 public:
  Pipeline& add(std::unique_ptr<Pass> pass);
  // Runs the stages in order; with verify, the IR verifier checks the graph after each.
  std::vector<StageResult> run(ir::Graph& graph, bool verify = true) const;
  std::vector<std::string> stage_names() const;

 private:
  std::vector<std::unique_ptr<Pass>> passes_;
};

// Registered passes: fold_constants, eliminate_dead_code, remove_identity,
// fuse_batch_norm, canonicalize_gemm, lower_int8.
std::unique_ptr<Pass> create_pass(const std::string& name);
std::vector<std::string> pass_names();
// "inference" (the standard inference pipeline, ending with lower_int8), "portable" (the
// same without lower_int8: the result exports to ONNX), "none", or a comma-separated
// list of pass names.
Pipeline make_pipeline(const std::string& spec);

}  // namespace shrink::passes
