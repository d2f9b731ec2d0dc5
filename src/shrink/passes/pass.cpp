#include "shrink/passes/pass.h"

#include <cstdlib>
#include <map>
#include <sstream>

#include "shrink/core/error.h"
#include "shrink/ops/shape_inference.h"
#include "shrink/passes/fold_constants.h"
#include "shrink/passes/inference_passes.h"

namespace shrink::passes {
namespace {

class FunctionPass : public Pass {
 public:
  FunctionPass(std::string name, std::function<bool(ir::Graph&)> fn) : name_(std::move(name)), fn_(std::move(fn)) {}
  std::string name() const override { return name_; }
  bool run(ir::Graph& graph) override { return fn_(graph); }

 private:
  std::string name_;
  std::function<bool(ir::Graph&)> fn_;
};

const std::map<std::string, std::function<bool(ir::Graph&)>>& registry() {
  static const std::map<std::string, std::function<bool(ir::Graph&)>> passes = {
      {"fold_constants", [](ir::Graph& g) { return fold_constants(g) > 0; }},
      {"eliminate_dead_code", eliminate_dead_code},
      {"remove_identity", remove_identity},
      {"fuse_batch_norm", fuse_batch_norm},
      {"canonicalize_gemm", canonicalize_gemm},
      {"fuse_gelu", fuse_gelu},
      {"fuse_int4", fuse_int4},
      {"fuse_conv", fuse_conv},
      {"lower_int8", lower_int8},
  };
  return passes;
}

}  // namespace

namespace {
std::string& backend_setting() {
  static std::string backend = [] {
    const char* env = std::getenv("SHRINK_BACKEND");
    return std::string(env && *env ? env : "onednn");
  }();
  return backend;
}
}  // namespace

void set_inference_backend(const std::string& backend) {
  SHRINK_CHECK(backend == "onednn" || backend == "aten", "--backend: expected onednn or aten, got '", backend, "'");
  backend_setting() = backend;
}

const std::string& inference_backend() {
  const std::string& b = backend_setting();
  SHRINK_CHECK(b == "onednn" || b == "aten", "SHRINK_BACKEND: expected onednn or aten, got '", b, "'");
  return b;
}

std::unique_ptr<Pass> make_pass(std::string name, std::function<bool(ir::Graph&)> fn) {
  return std::make_unique<FunctionPass>(std::move(name), std::move(fn));
}

Pipeline& Pipeline::add(std::unique_ptr<Pass> pass) {
  passes_.push_back(std::move(pass));
  return *this;
}

std::vector<StageResult> Pipeline::run(ir::Graph& graph, bool verify) const {
  std::vector<StageResult> results;
  for (const auto& pass : passes_) {
    bool changed = pass->run(graph);
    if (changed) ops::infer_shapes(graph);
    if (verify) {
      try {
        ops::verify_graph(graph);
      } catch (const Error& e) {
        fail("after pass ", pass->name(), ": ", e.what());
      }
    }
    results.push_back({pass->name(), changed, graph.nodes().size()});
  }
  return results;
}

std::vector<std::string> Pipeline::stage_names() const {
  std::vector<std::string> names;
  for (const auto& p : passes_) names.push_back(p->name());
  return names;
}

std::unique_ptr<Pass> create_pass(const std::string& name) {
  auto it = registry().find(name);
  if (it == registry().end()) {
    std::string known;
    for (const auto& [n, f] : registry()) known += (known.empty() ? "" : ", ") + n;
    fail("unknown pass '", name, "' (known: ", known, ")");
  }
  return make_pass(name, it->second);
}

std::vector<std::string> pass_names() {
  std::vector<std::string> names;
  for (const auto& [n, f] : registry()) names.push_back(n);
  return names;
}

Pipeline make_pipeline(const std::string& spec) {
  Pipeline p;
  if (spec == "none" || spec.empty()) return p;
  if (spec == "inference" || spec == "portable") {
    if (spec == "inference") p.add(create_pass("fuse_int4"));  // before folding unpacks the weights
    for (const char* name : {"fold_constants", "remove_identity", "fuse_batch_norm", "canonicalize_gemm",
                             "fold_constants", "eliminate_dead_code"})
      p.add(create_pass(name));
    if (spec == "inference") {  // the runtime's own ops (ai.shrink): never exported
      p.add(create_pass("fuse_gelu"));
      p.add(create_pass("lower_int8"));
      if (inference_backend() == "onednn") p.add(create_pass("fuse_conv"));
    }
    return p;
  }
  std::stringstream in(spec);
  std::string name;
  while (std::getline(in, name, ',')) p.add(create_pass(name));
  return p;
}

}  // namespace shrink::passes
