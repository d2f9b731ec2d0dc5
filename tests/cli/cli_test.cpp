// The shrink binary: run, info, --help, --json and its errors.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

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

// A tiny IDX dataset in MNIST layout: 64 train and 32 test images of side x side pixels, 3 classes.
void write_tiny_idx(const test_support::TempDir& dir, int64_t side) {
  auto write_idx = [&](const std::string& name, const at::Tensor& t) {
    std::string s = {0, 0, 0x08, static_cast<char>(t.dim())};
    for (int64_t d : t.sizes())
      for (int shift : {24, 16, 8, 0}) s.push_back(static_cast<char>((d >> shift) & 0xff));
    s.append(static_cast<const char*>(t.data_ptr()), t.numel());
    std::ofstream(dir.file(name), std::ios::binary) << s;
  };
  at::manual_seed(0);
  write_idx("train-images-idx3-ubyte", at::randint(0, 256, {64, side, side}, at::kLong).to(at::kByte));
  write_idx("train-labels-idx1-ubyte", at::randint(0, 3, {64}, at::kLong).to(at::kByte));
  write_idx("t10k-images-idx3-ubyte", at::randint(0, 256, {32, side, side}, at::kLong).to(at::kByte));
  write_idx("t10k-labels-idx1-ubyte", (at::arange(32, at::kLong) % 3).to(at::kByte));
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
  // Every subcommand `shrink --help` lists (so a new one is covered), and at least these.
  auto top = run_command(shrink_cli() + " --help");
  ASSERT_EQ(top.status, 0) << top.output;
  std::vector<std::string> subs;
  std::istringstream lines(top.output.substr(top.output.find("Subcommands:")));
  std::string line;
  std::getline(lines, line);
  while (std::getline(lines, line) && line.rfind("  ", 0) == 0) subs.push_back(line.substr(2, line.find(' ', 2) - 2));
  for (const char* sub : {"run", "info", "convert", "bench", "train", "eval", "zoo", "prune", "sensitivity", "factorize",
                          "quantize", "distill", "compress", "data"})
    EXPECT_NE(std::find(subs.begin(), subs.end(), sub), subs.end()) << sub << " not listed by shrink --help";
  for (const std::string& sub : subs) {
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

  for (const char* backend : {"onednn", "aten"}) {  // before the subcommand or after it
    EXPECT_EQ(run_command(shrink_cli() + " --backend " + backend + " info " + model).status, 0) << backend;
    EXPECT_EQ(run_command(shrink_cli() + " info " + model + " --backend " + backend).status, 0) << backend;
  }
  auto bad_backend = run_command(shrink_cli() + " --backend gpu info " + model);
  EXPECT_NE(bad_backend.status, 0);
  EXPECT_NE(bad_backend.output.find("--backend"), std::string::npos) << bad_backend.output;

  std::ofstream(dir.file("junk.npy")) << "junk";
  auto bad_npy = run_command(shrink_cli() + " run " + model + " -i " + dir.file("junk.npy") + " -o " + dir.file("y.npy"));
  EXPECT_EQ(bad_npy.status, 1);
  EXPECT_EQ(bad_npy.output, "shrink: error: " + dir.file("junk.npy") + ": not a .npy file (bad magic)\n");
}

TEST(Cli, TrainEvalAndZoo) {
  test_support::TempDir dir;
  write_tiny_idx(dir, 8);
  std::string data = " --data " + dir.path;
  auto train = run_command(shrink_cli() + " train --model mlp --epochs 2 --batch 16 --json -o " + dir.file("m.onnx") + data);
  ASSERT_EQ(train.status, 0) << train.output;
  auto tj = nlohmann::json::parse(train.output);
  EXPECT_EQ(tj["history"].size(), 2u);
  auto eval = run_command(shrink_cli() + " eval --json " + dir.file("m.onnx") + data);
  ASSERT_EQ(eval.status, 0) << eval.output;
  auto ej = nlohmann::json::parse(eval.output);
  EXPECT_EQ(ej["samples"], 32);
  EXPECT_DOUBLE_EQ(ej["accuracy"].get<double>(), tj["test_accuracy"].get<double>());
  EXPECT_EQ(ej["confusion"].size(), 3u);

  auto unknown = run_command(shrink_cli() + " train --model vgg99 -o " + dir.file("x.onnx") + data);
  EXPECT_EQ(unknown.status, 1);
  EXPECT_NE(unknown.output.find("--model: 'vgg99' is neither a zoo model"), std::string::npos) << unknown.output;
  auto missing = run_command(shrink_cli() + " eval " + dir.file("m.onnx") + " --data " + dir.file("nowhere"));
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.output.find("nowhere: not found (expected a data directory, an image folder or a .npy/.npz file)"),
            std::string::npos)
      << missing.output;
  std::filesystem::create_directories(dir.file("empty"));
  auto empty = run_command(shrink_cli() + " eval " + dir.file("m.onnx") + " --data " + dir.file("empty"));
  EXPECT_EQ(empty.status, 1);
  EXPECT_NE(empty.output.find("empty: no images and no class folders"), std::string::npos) << empty.output;
  auto wrong_shape = run_command(shrink_cli() + " eval " + gemm_model(dir) + data);
  EXPECT_EQ(wrong_shape.status, 1);
  // An IDX directory is named after itself (the package's: fashion-mnist/test).
  std::string idx_name = std::filesystem::path(dir.path).filename().string() + "/test";
  EXPECT_NE(wrong_shape.output.find("but '" + idx_name + "' has 1x8x8 images"), std::string::npos) << wrong_shape.output;

  // Ctrl-C: a resumable checkpoint, exit 130; --resume finishes the run.
  std::string ckpt = dir.file("run.ckpt");
  auto interrupted = run_command("timeout --preserve-status -s INT 3 " + shrink_cli() + " train --model mlp --epochs 100000 --batch 16 -o " +
                                 dir.file("i.onnx") + " --checkpoint " + ckpt + data);
  EXPECT_EQ(interrupted.status, 130) << interrupted.output;
  EXPECT_NE(interrupted.output.find("interrupted, checkpoint saved to " + ckpt), std::string::npos) << interrupted.output;
  EXPECT_FALSE(std::ifstream(dir.file("i.onnx")).good());
  auto resumed = run_command(shrink_cli() + " train --model mlp --epochs 1 --resume --checkpoint " + ckpt + " --json -o " +
                             dir.file("i.onnx") + data);
  EXPECT_EQ(resumed.status, 0) << resumed.output;

  auto zoo = run_command(shrink_cli() + " zoo --json");
  ASSERT_EQ(zoo.status, 0) << zoo.output;
  auto zj = nlohmann::json::parse(zoo.output);
  EXPECT_EQ(zj.size(), 9u);
  EXPECT_EQ(zj[0]["name"], "mlp");
  EXPECT_EQ(zj[8]["name"], "vit");
  EXPECT_EQ(zj[8]["parameters"], 139018);
  EXPECT_EQ(zj[0]["parameters"], 101770);
}

TEST(Cli, PruneZeroesTheSmallestWeightsAndRejectsBadRequests) {
  test_support::TempDir dir;
  std::string model = gemm_model(dir);  // W = [[0, 1, 2], [3, 4, 5]]: five alive
  std::string out = dir.file("pruned.onnx");
  auto r = run_command(shrink_cli() + " prune " + model + " --amount 0.5 --no-eval --json -o " + out);
  ASSERT_EQ(r.status, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["layers"][0]["alive"], 3);  // round(2.5) = 2 removed: 1 and 2
  EXPECT_EQ(j["before"]["nonzeros"], 5);
  EXPECT_EQ(j["after"]["nonzeros"], 3);
  io::write_npy(dir.file("x.npy"), at::ones({1, 3}));
  auto run = run_command(shrink_cli() + " run " + out + " -i " + dir.file("x.npy") + " -o " + dir.file("y.npy"));
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_TRUE(at::equal(io::read_npy(dir.file("y.npy")), at::tensor({0.0f, 12.0f}).view({1, 2})));

  auto amount = run_command(shrink_cli() + " prune " + model + " --amount 1 --no-eval -o " + out);
  EXPECT_EQ(amount.status, 1);
  EXPECT_EQ(amount.output, "shrink: error: --amount must be in [0, 1), got 1\n");
  auto schedule = run_command(shrink_cli() + " prune " + model + " --schedule iterative:0 --no-eval -o " + out);
  EXPECT_EQ(schedule.status, 1);
  EXPECT_NE(schedule.output.find("--schedule iterative:N: expected an integer from 1 to 1000, got '0'"), std::string::npos) << schedule.output;
  auto layer = run_command(shrink_cli() + " prune " + model + " --layers nope --no-eval -o " + out);
  EXPECT_EQ(layer.status, 1);
  EXPECT_NE(layer.output.find("--layers: 'nope' is not a prunable layer of the model (layers: fc)"), std::string::npos)
      << layer.output;
}

// --storage on a command that writes a model: compact (decode nodes, smallest), sparse
// (a sparse initializer, no decode nodes), dense; the same outputs from each.
TEST(Cli, PruneWritesEachStorage) {
  test_support::TempDir dir;
  at::manual_seed(5);
  OnnxBuilder b;
  b.input("x", {-1, 200}).output("y");
  b.initializer("W", at::randn({100, 200}));
  auto& n = b.node("Gemm", {"x", "W"}, {"y"}, "fc");
  OnnxBuilder::attr(n, "transB", int64_t{1});
  const std::string model = b.save(dir.file("fc.onnx"));
  io::write_npy(dir.file("x.npy"), at::randn({4, 200}));
  std::map<std::string, nlohmann::json> info;
  std::map<std::string, at::Tensor> y;
  for (const char* storage : {"compact", "sparse", "dense"}) {
    const std::string out = dir.file(std::string(storage) + ".onnx");
    auto r = run_command(shrink_cli() + " prune " + model + " --amount 0.9 --no-eval --no-latency --storage " + storage +
                         " -o " + out);
    ASSERT_EQ(r.status, 0) << r.output;
    auto i = run_command(shrink_cli() + " info " + out + " --json");
    ASSERT_EQ(i.status, 0) << i.output;
    info[storage] = nlohmann::json::parse(i.output);
    auto run = run_command(shrink_cli() + " run " + out + " -i " + dir.file("x.npy") + " -o " + dir.file("y.npy"));
    ASSERT_EQ(run.status, 0) << run.output;
    y[storage] = io::read_npy(dir.file("y.npy"));
  }
  auto form = [&](const char* storage) { return info[storage]["storage"][0]["form"].get<std::string>(); };
  EXPECT_EQ(form("dense"), "dense");
  EXPECT_EQ(form("sparse"), "sparse");
  EXPECT_NE(form("compact").find("relative"), std::string::npos) << form("compact");
  EXPECT_LT(std::filesystem::file_size(dir.file("compact.onnx")), std::filesystem::file_size(dir.file("sparse.onnx")));
  EXPECT_LT(std::filesystem::file_size(dir.file("sparse.onnx")), std::filesystem::file_size(dir.file("dense.onnx")));
  EXPECT_TRUE(at::equal(y["compact"], y["dense"]));
  EXPECT_TRUE(at::equal(y["sparse"], y["dense"]));
  auto bad = run_command(shrink_cli() + " prune " + model + " --storage packed -o " + dir.file("p.onnx"));
  EXPECT_NE(bad.status, 0) << bad.output;
  EXPECT_EQ(bad.output, "shrink: error: --storage: packed not in {compact,sparse,dense} (see shrink prune --help)\n");
}

TEST(Cli, StructuredPruneWithTaylorAndGlobalRanking) {
  test_support::TempDir dir;
  write_tiny_idx(dir, 28);
  std::string data = " --data " + dir.path;
  auto train = run_command(shrink_cli() + " train --model lenet5 --epochs 1 --batch 16 --json -o " + dir.file("l.onnx") + data);
  ASSERT_EQ(train.status, 0) << train.output;
  std::string prune = shrink_cli() + " prune " + dir.file("l.onnx") + " -o " + dir.file("p.onnx") + data;
  auto r = run_command(prune + " --method taylor --ranking global --amount 0.3 --max-ratio 0.5 --taylor-batches 2 --batch 16 --json");
  ASSERT_EQ(r.status, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  int64_t before = 0, after = 0;
  for (const auto& grp : j["groups"]) {
    before += grp["channels_before"].get<int64_t>(), after += grp["channels_after"].get<int64_t>();
    EXPECT_GE(2 * grp["channels_after"].get<int64_t>(), grp["channels_before"].get<int64_t>()) << grp;
  }
  EXPECT_EQ(before - after, 68);  // 30% of 6 + 16 + 120 + 84 channels
  EXPECT_LT(j["after"]["parameters"].get<int64_t>(), j["before"]["parameters"].get<int64_t>());
  EXPECT_EQ(j["skipped"][0], "group 'fc2': graph output 'logits'");

  auto output_layer = run_command(prune + " --method ln-structured --layers fc2 --no-eval");
  EXPECT_EQ(output_layer.status, 1);
  EXPECT_EQ(output_layer.output,
            "shrink: error: --layers: cannot prune the output channels of 'fc2': they are fixed by graph output 'logits'\n");
  auto bad_amount = run_command(prune + " --method ln-structured --layer-amount conv=x --no-eval");
  EXPECT_EQ(bad_amount.status, 1);
  EXPECT_NE(bad_amount.output.find("--layer-amount conv: expected a number, got 'x'"), std::string::npos) << bad_amount.output;
}

TEST(Cli, FactorizeReportsEachLayerAndRejectsBadRanks) {
  test_support::TempDir dir;
  std::string model = gemm_model(dir);  // W [2, 3]: break-even rank 6/5 = 1.2
  std::string out = dir.file("f.onnx");
  auto r = run_command(shrink_cli() + " factorize " + model + " --method svd --rank 1 --no-eval --json -o " + out);
  ASSERT_EQ(r.status, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  ASSERT_EQ(j["layers"].size(), 1u);
  EXPECT_EQ(j["layers"][0]["ranks"], nlohmann::json::array({1}));
  EXPECT_EQ(j["layers"][0]["weights_before"], 6);
  EXPECT_EQ(j["layers"][0]["weights_after"], 5);
  // W = [[0, 1, 2], [3, 4, 5]] has singular values 7.35 and 1.00: rank 1 keeps 98.2% of the energy.
  EXPECT_NEAR(j["layers"][0]["relative_error"].get<double>(), 1.0 / std::sqrt(55.0), 1e-3);
  // The factors, the first new and the last keeping the layer's name, each timed alone.
  EXPECT_EQ(j["layers"][0]["nodes"], nlohmann::json::array({"fc.f0", "fc"}));
  EXPECT_GT(j["layers"][0]["latency_ms_before"].get<double>(), 0);
  EXPECT_GT(j["layers"][0]["latency_ms_after"].get<double>(), 0);
  auto info = run_command(shrink_cli() + " info --json " + out);
  ASSERT_EQ(info.status, 0) << info.output;
  EXPECT_EQ(nlohmann::json::parse(info.output)["ops"]["Gemm"], 2);

  auto too_big = run_command(shrink_cli() + " factorize " + model + " --rank 2 --no-eval -o " + out);
  EXPECT_EQ(too_big.status, 1);
  EXPECT_EQ(too_big.output, "shrink: error: " + model + ": no layer was factorized; first: 'fc': rank 2 gives 10 weights, "
                            "not fewer than 6 (break-even rank 1.2)\n");
  auto zero = run_command(shrink_cli() + " factorize " + model + " --rank 0 --no-eval -o " + out);
  EXPECT_EQ(zero.status, 1);
  EXPECT_EQ(zero.output, "shrink: error: --rank: '0' is neither a rank (an integer >= 1) nor vbmf\n");
  auto ratio = run_command(shrink_cli() + " factorize " + model + " --ratio 0.5 --no-eval -o " + out);
  EXPECT_EQ(ratio.status, 1);
  EXPECT_EQ(ratio.output, "shrink: error: --ratio must be above 1, got 0.5\n");
  auto tucker = run_command(shrink_cli() + " factorize " + model + " --method tucker --no-eval -o " + out);
  EXPECT_EQ(tucker.status, 1);
  EXPECT_NE(tucker.output.find("'fc': tucker applies to convolutions; use svd for Gemm"), std::string::npos) << tucker.output;
}

TEST(Cli, DistillOfflineMutualAndBadRequests) {
  test_support::TempDir dir;
  write_tiny_idx(dir, 28);
  std::string data = " --data " + dir.path;
  auto teacher = run_command(shrink_cli() + " train --model lenet5 --epochs 1 --batch 16 --json -o " + dir.file("t.onnx") + data);
  ASSERT_EQ(teacher.status, 0) << teacher.output;
  std::string distill = shrink_cli() + " distill --epochs 1 --batch 16 --json" + data;
  auto r = run_command(distill + " --teacher " + dir.file("t.onnx") + " --student lenet5 --width 0.5 --cache " +
                       dir.file("cache") + " -o " + dir.file("s.onnx"));
  ASSERT_EQ(r.status, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["teachers"][0]["parameters"], 61111);  // LeNet-5 with 3 classes
  EXPECT_LT(j["students"][0]["parameters"].get<int64_t>(), 20000);  // half width
  EXPECT_EQ(j["cache"]["hit"], false);
  auto again = run_command(distill + " --teacher " + dir.file("t.onnx") + " --student lenet5 --width 0.5 --cache " +
                           dir.file("cache") + " -o " + dir.file("s.onnx"));
  ASSERT_EQ(again.status, 0) << again.output;
  EXPECT_EQ(nlohmann::json::parse(again.output)["cache"]["hit"], true);

  auto mutual = run_command(distill + " --mode mutual --student mlp --student lenet5 -o " + dir.file("m.onnx"));
  ASSERT_EQ(mutual.status, 0) << mutual.output;
  EXPECT_EQ(nlohmann::json::parse(mutual.output)["students"].size(), 2u);
  EXPECT_TRUE(std::ifstream(dir.file("m.onnx")).good());
  EXPECT_TRUE(std::ifstream(dir.file("m.1.onnx")).good());

  std::string offline = distill + " --teacher " + dir.file("t.onnx") + " --student mlp -o " + dir.file("x.onnx");
  auto temperature = run_command(offline + " --temperature 0");
  EXPECT_EQ(temperature.status, 1);
  EXPECT_EQ(temperature.output, "shrink: error: --temperature must be positive, got 0\n");
  auto hint = run_command(offline + " --hint nope:relu.out");
  EXPECT_EQ(hint.status, 1);
  EXPECT_NE(hint.output.find("hint: the teacher has no value 'nope'; candidates: conv.out, relu.out"), std::string::npos)
      << hint.output;
  EXPECT_FALSE(std::ifstream(dir.file("x.onnx")).good());  // nothing trained, nothing written
  auto no_teacher = run_command(distill + " --student mlp -o " + dir.file("x.onnx"));
  EXPECT_EQ(no_teacher.status, 1);
  EXPECT_EQ(no_teacher.output, "shrink: error: --mode offline needs --teacher\n");
}

TEST(Cli, QuantizeStaticAndDynamicReportAndRejectBadData) {
  test_support::TempDir dir;
  write_tiny_idx(dir, 28);
  std::string data = " --data " + dir.path;
  auto train = run_command(shrink_cli() + " train --model lenet5 --epochs 1 --batch 16 --json -o " + dir.file("l.onnx") + data);
  ASSERT_EQ(train.status, 0) << train.output;
  std::string quantize = shrink_cli() + " quantize " + dir.file("l.onnx") + " -o " + dir.file("q.onnx") + data;
  auto r = run_command(quantize + " --calib-batches 2 --batch 16 --observer entropy --json");
  ASSERT_EQ(r.status, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["calibration_batches"], 2);
  EXPECT_EQ(j["layers"].size(), 5u);  // 2 Conv + 3 Gemm
  EXPECT_EQ(j["activations"], 8);  // the image, 2 conv ReLUs, 2 pooled maps, the flattened map, 2 fc ReLUs
  EXPECT_EQ(j["before"]["parameters"], j["after"]["parameters"]);  // int8 weights still count as parameters
  EXPECT_LT(j["after"]["bytes_on_disk"].get<int64_t>() * 3, j["before"]["bytes_on_disk"].get<int64_t>());
  EXPECT_TRUE(j["after"].contains("test_accuracy"));
  auto info = run_command(shrink_cli() + " info --json --passes inference " + dir.file("q.onnx"));
  ASSERT_EQ(info.status, 0) << info.output;
  auto ij = nlohmann::json::parse(info.output);
  EXPECT_EQ(ij["ops"]["Int8Conv"], 2);
  EXPECT_EQ(ij["ops"]["Int8Linear"], 2);  // the classifier (a graph output) stays float
  EXPECT_EQ(ij["ops"]["Int8MaxPool"], 2);  // pooling and flattening on the int8 values
  EXPECT_EQ(ij["ops"]["Int8Flatten"], 1);
  EXPECT_EQ(ij["ops"]["Gemm"], 1);

  auto qat = run_command(quantize + " --mode qat --lsq --epochs 1 --calib-batches 2 --batch 16 --json");
  ASSERT_EQ(qat.status, 0) << qat.output;
  auto qj = nlohmann::json::parse(qat.output);
  EXPECT_EQ(qj["qat"]["epochs"], 1);
  EXPECT_EQ(qj["qat"]["best_epoch"], 1);
  EXPECT_TRUE(qj["after"].contains("test_accuracy"));
  EXPECT_LT(qj["after"]["bytes_on_disk"].get<int64_t>() * 3, qj["before"]["bytes_on_disk"].get<int64_t>());

  auto dynamic = run_command(quantize + " --mode dynamic --per-tensor --no-eval --json");
  ASSERT_EQ(dynamic.status, 0) << dynamic.output;
  auto dj = nlohmann::json::parse(dynamic.output);
  EXPECT_EQ(dj["layers"][0]["skipped"], "dynamic mode quantizes Gemm and MatMul (use static for convolutions)");
  EXPECT_FALSE(dj["layers"][2].contains("skipped"));

  test_support::TempDir small;
  write_tiny_idx(small, 20);
  auto misfit = run_command(shrink_cli() + " quantize " + dir.file("l.onnx") + " -o " + dir.file("x.onnx") + " --data " + small.path);
  EXPECT_EQ(misfit.status, 1);
  EXPECT_NE(misfit.output.find("shrink: error:"), std::string::npos);
  EXPECT_EQ(std::count(misfit.output.begin(), misfit.output.end(), '\n'), 1) << misfit.output;
  EXPECT_FALSE(std::filesystem::exists(dir.file("x.onnx")));
  auto bad_mode = run_command(quantize + " --mode int4");
  EXPECT_NE(bad_mode.status, 0);
  EXPECT_NE(bad_mode.output.find("--mode"), std::string::npos) << bad_mode.output;
}
