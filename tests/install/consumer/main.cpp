// Runs an ONNX backend test case (model.onnx and test_data_set_0/) through the
// installed library and checks each output against the stored one.
// Usage: consumer CASE_DIR   (exit 0 when every output matches within 1e-4)
#include <ATen/ATen.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "shrink/core/version.h"
#include "shrink/exec/session.h"
#include "shrink/onnx/import.h"
#include "shrink/onnx/tensor_proto.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer CASE_DIR\n");
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  const std::filesystem::path data = dir / "test_data_set_0";
  try {
    shrink::ir::Graph g = shrink::onnx_io::import_model((dir / "model.onnx").string());
    std::vector<at::Tensor> inputs, expected;
    for (size_t i = 0; std::filesystem::exists(data / ("input_" + std::to_string(i) + ".pb")); ++i)
      inputs.push_back(shrink::onnx_io::read_tensor_file((data / ("input_" + std::to_string(i) + ".pb")).string()));
    for (size_t i = 0; std::filesystem::exists(data / ("output_" + std::to_string(i) + ".pb")); ++i)
      expected.push_back(shrink::onnx_io::read_tensor_file((data / ("output_" + std::to_string(i) + ".pb")).string()));

    // Keep the first node's output as a tap: any named intermediate value is readable.
    const std::string tap = g.nodes().front()->outputs().front()->name;
    shrink::exec::Session session(g, {/*training=*/false, /*taps=*/{tap}});
    std::vector<at::Tensor> y = session.run(inputs);
    if (y.size() != expected.size()) {
      std::fprintf(stderr, "consumer: %zu outputs, %zu expected\n", y.size(), expected.size());
      return 1;
    }
    double worst = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      if (!y[i].sizes().equals(expected[i].sizes())) {
        std::fprintf(stderr, "consumer: output %zu has the wrong shape\n", i);
        return 1;
      }
      worst = std::max(worst, (y[i].to(at::kDouble) - expected[i].to(at::kDouble)).abs().max().item<double>());
    }
    std::printf("consumer: shrink %s: %zu nodes, %zu outputs, max |diff| %.3g vs the stored outputs; tap '%s' has %lld values\n",
                shrink::version(), g.nodes().size(), y.size(), worst, tap.c_str(),
                static_cast<long long>(session.tap(tap).numel()));
    return worst <= 1e-4 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return 1;
  }
}
