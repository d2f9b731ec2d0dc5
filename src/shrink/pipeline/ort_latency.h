// ONNX Runtime as the latency peer of `shrink compress`: tools/ort_run.js (npm's
// onnxruntime-node, installed by scripts/setup.sh) run by Node.js, timing a file.
#pragma once
#include <string>

namespace shrink::pipeline {

struct OrtLatency {
  double median_ms = 0, min_ms = 0, create_ms = 0;
};

// The runner script: $SHRINK_ORT_RUN, else tools/ort_run.js beside the build tree or
// share/shrink/ort_run.js beside the installed binary, when `node` and its
// onnxruntime-node package are there. "" when not found (ort_missing_reason() says why).
std::string find_ort_script();
std::string ort_missing_reason();

// Times `model` in ONNX Runtime at `batch` (random inputs), the machine's threads,
// median of `runs` after 5 warm-up runs; session creation median of 5. Errors name
// the file and quote the runner's message.
OrtLatency ort_latency(const std::string& script, const std::string& model, int64_t batch, int runs = 30);

}  // namespace shrink::pipeline
