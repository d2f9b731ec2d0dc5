// Transformers PyTorch exports, with symbolic dimensions other than the batch: an
// nn.TransformerEncoder whose sequence length is the symbol `sequence`, and
// torchvision's VisionTransformer, whose attention works on [tokens, N, width].
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "shrink/exec/session.h"
#include "shrink/io/npy.h"
#include "shrink/onnx/import.h"
#include "support/onnx_builder.h"
#include "support/ort.h"
#include "support/paths.h"
#include "support/process.h"

using namespace shrink;

namespace {

// Exports nn.TransformerEncoder (2 layers, width 32, 4 heads, batch_first) with a
// linear head, input [N, sequence, 32], and PyTorch's output on a [3, 7, 32] input.
std::string export_encoder(const test_support::TempDir& dir, int opset) {
  std::ofstream(dir.file("export.py")) << R"(import sys, numpy as np, torch
d, opset = sys.argv[1], int(sys.argv[2])
torch.manual_seed(0)
layer = torch.nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, dropout=0.0, batch_first=True)
m = torch.nn.Sequential(torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False), torch.nn.Linear(32, 5)).eval()
x = torch.randn(3, 7, 32)
torch.onnx.export(m, x, f"{d}/model.onnx", opset_version=opset, input_names=["x"], output_names=["y"],
                  dynamic_axes={"x": {0: "N", 1: "sequence"}, "y": {0: "N", 1: "sequence"}})
np.save(f"{d}/x.npy", x.numpy())
with torch.no_grad():
    np.save(f"{d}/y.npy", m(x).numpy())
)";
  auto r = test_support::run_command(test_support::python() + " " + dir.file("export.py") + " " + dir.path + " " +
                                     std::to_string(opset) + " 2>&1");
  return r.status == 0 ? "" : r.output;
}

}  // namespace

TEST(Transformer, SymbolicSequenceRunsTimesAndFactorizes) {
  for (int opset : {13, 17}) {
    test_support::TempDir dir;
    ASSERT_EQ(export_encoder(dir, opset), "");
    ir::Graph g = onnx_io::import_model(dir.file("model.onnx"));
    at::Tensor want = io::read_npy(dir.file("y.npy"));
    at::Tensor got = exec::run_once(g, {io::read_npy(dir.file("x.npy"))})[0];
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_LE((got - want).abs().max().item<double>(), 1e-4) << "opset " << opset;
    // Timing needs the sequence length: without it, a one-line error naming it.
    std::string bench = std::string(SHRINK_CLI) + " bench " + dir.file("model.onnx") + " --runs 2 --json";
    auto r = test_support::run_command(bench + " 2>&1");
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.output.find("('sequence')"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("--dim sequence=SIZE"), std::string::npos) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
    r = test_support::run_command(std::string(SHRINK_CLI) + " --dim sequence=16 bench " + dir.file("model.onnx") +
                                  " --runs 2 --json");
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_GT(nlohmann::json::parse(r.output)["median_ms"].get<double>(), 0);
    for (const char* bad : {"sequence", "=16", "sequence=0", "sequence=x"}) {
      r = test_support::run_command(std::string(SHRINK_CLI) + " --dim " + bad + " bench " + dir.file("model.onnx") +
                                    " 2>&1");
      EXPECT_NE(r.status, 0) << bad;
      EXPECT_NE(r.output.find("--dim"), std::string::npos) << bad << ": " << r.output;
    }
    // SVD of every projection, each factorized layer timed alone on the values the
    // whole model computes there ([N, sequence, 32] and [sequence, N, 32] alike).
    r = test_support::run_command(std::string(SHRINK_CLI) + " factorize " + dir.file("model.onnx") + " -o " +
                                  dir.file("svd.onnx") + " --method svd --rank 4 --no-eval --dim sequence=16 --json");
    ASSERT_EQ(r.status, 0) << r.output;
    nlohmann::json j = nlohmann::json::parse(r.output);
    int factorized = 0;
    for (const auto& l : j["layers"])
      if (l.contains("latency_ms_after")) {
        ++factorized;
        EXPECT_GT(l["latency_ms_after"].get<double>(), 0);
      }
    EXPECT_GE(factorized, 4) << r.output;
    at::Tensor x = at::randn({2, 11, 32});
    at::Tensor svd = exec::run_once(onnx_io::import_model(dir.file("svd.onnx")), {x})[0];
    EXPECT_EQ(svd.sizes(), (std::vector<int64_t>{2, 11, 5}));
    EXPECT_LE((test_support::run_onnxruntime(dir.file("svd.onnx"), {x})[0] - svd).abs().max().item<double>(), 1e-4);
  }
}

// The issue's report: `factorize --method svd` on torchvision's ViT stopped with "only
// the batch dimension may be symbolic, got float32[17,?,64]" (attention's [tokens, N,
// width] layout); now every projection is factorized and timed.
TEST(Transformer, TorchvisionVitFactorizesWithSvd) {
  test_support::TempDir dir;
  auto r = test_support::run_command(test_support::python() + " " + SHRINK_SOURCE_DIR +
                                     "/tools/export_torchvision.py --model vit_tiny --size 32 --dynamic-batch --out " +
                                     dir.path + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  r = test_support::run_command(std::string(SHRINK_CLI) + " factorize " + dir.file("model.onnx") + " -o " +
                                dir.file("svd.onnx") + " --method svd --rank 8 --no-eval --json 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  nlohmann::json j = nlohmann::json::parse(r.output);
  int timed = 0;
  for (const auto& l : j["layers"]) timed += l.contains("latency_ms_after");
  EXPECT_GE(timed, 6) << r.output;
  at::Tensor x = io::read_npy(dir.file("input.npy"));
  at::Tensor got = exec::run_once(onnx_io::import_model(dir.file("svd.onnx")), {x})[0];
  EXPECT_LE((test_support::run_onnxruntime(dir.file("svd.onnx"), {x})[0] - got).abs().max().item<double>(), 1e-4);
}
