// ONNX Runtime (tools/ort_run.js, npm onnxruntime-node) as the reference runtime.
#pragma once
#include <ATen/ATen.h>

#include <filesystem>
#include <string>
#include <vector>

#include "shrink/core/error.h"
#include "shrink/io/npy.h"
#include "support/onnx_builder.h"
#include "support/process.h"

namespace shrink::test_support {

// Runs `model` in ONNX Runtime on `inputs`; returns its outputs.
inline std::vector<at::Tensor> run_onnxruntime(const std::string& model, const std::vector<at::Tensor>& inputs) {
  TempDir dir;
  std::string cmd = std::string("node ") + SHRINK_SOURCE_DIR + "/tools/ort_run.js run " + model + " " + dir.path;
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::string f = dir.file("input_" + std::to_string(i) + ".npy");
    io::write_npy(f, inputs[i]);
    cmd += " " + f;
  }
  ProcessResult r = run_command(cmd);
  SHRINK_CHECK(r.status == 0, "ONNX Runtime failed on ", model, ": ", r.output);
  std::vector<at::Tensor> outputs;
  for (int i = 0; std::filesystem::exists(dir.file("output_" + std::to_string(i) + ".npy")); ++i)
    outputs.push_back(io::read_npy(dir.file("output_" + std::to_string(i) + ".npy")));
  return outputs;
}

}  // namespace shrink::test_support
