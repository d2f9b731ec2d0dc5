// libFuzzer target: bytes -> ONNX import -> verify -> one run on zero inputs
// (symbolic dimensions set to 1). A graph whose inputs or statically inferred
// node outputs would exceed a budget is skipped before it runs (a valid model may
// ask for any size; the fuzzer's memory cap is for the importer's own
// allocations); everything else must either run or end in a shrink::Error.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "shrink/core/error.h"
#include "shrink/exec/session.h"
#include "shrink/ops/shape_inference.h"
#include "shrink/onnx/import.h"

namespace {
constexpr int64_t kMaxInputElements = int64_t{1} << 20;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool once = [] {
    at::set_num_threads(1);
    return true;
  }();
  (void)once;
  try {
    shrink::ir::Graph g =
        shrink::onnx_io::import_model_bytes(std::string(reinterpret_cast<const char*>(data), size), "fuzz.onnx");
    shrink::ops::verify_graph(g);
    std::vector<at::Tensor> inputs;
    for (const shrink::ir::Value* v : g.inputs()) {
      if (!v->type.has_shape) return 0;
      std::vector<int64_t> dims;
      int64_t n = 1;
      for (int64_t d : v->type.dims) {
        dims.push_back(d < 0 ? 1 : d);
        if (dims.back() > kMaxInputElements) return 0;
        n *= dims.back();
        if (n > kMaxInputElements) return 0;
      }
      inputs.push_back(at::zeros(dims, at::TensorOptions().dtype(v->type.dtype)));
    }
    for (const auto& node : g.nodes())
      for (const shrink::ir::Value* v : node->outputs()) {
        if (!v || !v->type.has_shape) continue;
        int64_t n = 1;
        for (int64_t d : v->type.dims) {
          n *= d < 0 ? 1 : std::max<int64_t>(d, 1);
          if (n > kMaxInputElements * 16) return 0;
        }
      }
    shrink::exec::Session session(g);
    session.run(inputs);
  } catch (const shrink::Error&) {
  } catch (const c10::Error&) {
    // An ATen kernel refused the arguments (shapes the importer could not see
    // statically): an error, not a crash.
  }
  return 0;
}
