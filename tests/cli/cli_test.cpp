// The shrink binary: run, info, --help, --json and its errors.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "shrink/io/npy.h"
#include "support/onnx_builder.h"
#include "support/process.h"

using namespace shrink;
using test_support::OnnxBuilder;
using test_support::run_command;

namespace {

std::string shrink_cli() { return SHRINK_CLI; }

std::string gemm_model(const test_support::TempDir& dir) {
  OnnxBuilder b;
  b.input("x", {-1, 3}).output("y");
  b.initializer("W", at::arange(6, at::kFloat).view({2, 3}));
  auto& n = b.node("Gemm", {"x", "W"}, {"y"}, "fc");
  OnnxBuilder::attr(n, "transB", int64_t{1});
  return b.save(dir.file("gemm.onnx"));
}

}  // namespace

TEST(Cli, RunWritesOutputs) {
  test_support::TempDir dir;
  std::string model = gemm_model(dir);
  io::write_npy(dir.file("x.npy"), at::ones({4, 3}));
  auto r = run_command(shrink_cli() + " run " + model + " -i " + dir.file("x.npy") + " -o " + dir.file("y.npy"));
  ASSERT_EQ(r.status, 0) << r.output;
  at::Tensor y = io::read_npy(dir.file("y.npy"));
  EXPECT_TRUE(at::equal(y, at::tensor({3.f, 12.f}).repeat({4, 1})));
}

TEST(Cli, InfoJsonCountsParameters) {
  test_support::TempDir dir;
  auto r = run_command(shrink_cli() + " info --json " + gemm_model(dir));
  ASSERT_EQ(r.status, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["parameters"], 6);
  EXPECT_EQ(j["nonzero_parameters"], 5);
  EXPECT_EQ(j["inputs"][0]["type"], "float32[N,3]");
  EXPECT_EQ(j["ops"]["Gemm"], 1);
}

TEST(Cli, ConvertAppliesPassesAndBenchReportsLatency) {
  test_support::TempDir dir;
  OnnxBuilder b;
  b.input("x", {-1, 3}).output("y");
  b.initializer("W", at::randn({3, 2}));
  b.initializer("C", at::randn({2}));
  b.node("MatMul", {"x", "W"}, {"m"});
  b.node("Add", {"m", "C"}, {"a"});
  b.node("Identity", {"a"}, {"y"});
  std::string in = b.save(dir.file("in.onnx"));
  auto r = run_command(shrink_cli() + " convert " + in + " -o " + dir.file("out.onnx") + " --json");
  ASSERT_EQ(r.status, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["nodes_before"], 3);
  EXPECT_EQ(j["nodes_after"], 1);
  auto info = nlohmann::json::parse(run_command(shrink_cli() + " info --json " + dir.file("out.onnx")).output);
  EXPECT_EQ(info["ops"]["Gemm"], 1);
  EXPECT_EQ(info["macs_per_sample"], 6);
  EXPECT_EQ(info["outputs"][0]["name"], "y");
  auto bench = run_command(shrink_cli() + " --threads 1 bench " + dir.file("out.onnx") + " --batch 8 --runs 3 --json");
  ASSERT_EQ(bench.status, 0) << bench.output;
  auto bj = nlohmann::json::parse(bench.output);
  EXPECT_EQ(bj["batch"], 8);
  EXPECT_EQ(bj["threads"], 1);
  EXPECT_GT(bj["median_ms"].get<double>(), 0.0);
  auto bad = run_command(shrink_cli() + " convert " + in + " -o " + dir.file("x.onnx") + " --passes bogus");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.output.find("--passes: unknown pass 'bogus'"), std::string::npos) << bad.output;
}

TEST(Cli, EverySubcommandHasHelp) {
  for (const char* sub : {"run", "info", "convert", "bench"}) {
    auto r = run_command(shrink_cli() + " " + sub + " --help");
    EXPECT_EQ(r.status, 0) << sub;
    EXPECT_NE(r.output.find("Usage"), std::string::npos) << r.output;
  }
}

TEST(Cli, ErrorsAreOneLineWithNonZeroExit) {
  test_support::TempDir dir;
  std::string model = gemm_model(dir);
  io::write_npy(dir.file("bad.npy"), at::ones({4, 5}));
  auto wrong_shape = run_command(shrink_cli() + " run " + model + " -i " + dir.file("bad.npy") + " -o " + dir.file("y.npy"));
  EXPECT_EQ(wrong_shape.status, 1);
  EXPECT_EQ(wrong_shape.output, "shrink: error: " + model + ": input 'x': expected shape float32[N,3], got float32[4,5]\n");

  auto missing = run_command(shrink_cli() + " info " + dir.file("none.onnx"));
  EXPECT_EQ(missing.status, 1);
  EXPECT_EQ(missing.output, "shrink: error: " + dir.file("none.onnx") + ": cannot open file\n");

  auto bad_flag = run_command(shrink_cli() + " info " + model + " --bogus");
  EXPECT_NE(bad_flag.status, 0);
  EXPECT_NE(bad_flag.output.find("--bogus"), std::string::npos) << bad_flag.output;

  auto bad_threads = run_command(shrink_cli() + " --threads -2 info " + model);
  EXPECT_NE(bad_threads.status, 0);
  EXPECT_NE(bad_threads.output.find("--threads"), std::string::npos) << bad_threads.output;

  std::ofstream(dir.file("junk.npy")) << "junk";
  auto bad_npy = run_command(shrink_cli() + " run " + model + " -i " + dir.file("junk.npy") + " -o " + dir.file("y.npy"));
  EXPECT_EQ(bad_npy.status, 1);
  EXPECT_EQ(bad_npy.output, "shrink: error: " + dir.file("junk.npy") + ": not a .npy file (bad magic)\n");
}
