// Data-parallel training on c10d/Gloo through the CLI: two ranks on loopback take the
// same step as one process on the whole batch, under shrink's --nproc launcher and under
// torchrun; a SIGKILLed rank ends the job with an error naming it, and the checkpoint
// resumes; 3 epochs of LeNet-5 on Fashion-MNIST in 2 ranks match 1 process.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "shrink/io/npy.h"
#include "shrink/ir/graph.h"
#include "shrink/onnx/import.h"
#include "support/idx_data.h"
#include "support/onnx_builder.h"
#include "support/paths.h"
#include "support/process.h"

using namespace shrink;
using test_support::run_command;
namespace fs = std::filesystem;

namespace {

std::string cli() { return SHRINK_CLI; }

std::string torchrun(int nproc) {
  // Debian's torchrun (1.13 on Python 3.11) cannot parse its default "0" for --redirects
  // and --tee (enum.Flag no longer lists a zero member); any other value works.
  return test_support::python() + " -m torch.distributed.run --nproc_per_node " + std::to_string(nproc) +
         " --redirects 1 --tee 1 --no_python ";
}

// Largest absolute difference between two models' initializers (same names).
double max_difference(const std::string& a, const std::string& b) {
  ir::Graph ga = onnx_io::import_model(a), gb = onnx_io::import_model(b);
  double d = 0;
  for (const auto& [name, init] : ga.initializers()) {
    const ir::Initializer* other = gb.initializer(name);
    EXPECT_TRUE(other) << name;
    if (other && init.tensor.is_floating_point())
      d = std::max(d, (init.tensor - other->tensor).abs().max().item<double>());
  }
  return d;
}

// Runs `command` (a 2-rank job writing checkpoint `ck`) in the background, marked so its
// workers can be told from anything else running; once the checkpoint exists, sends
// `signal` to the worker whose RANK is 1 and waits for the job. Returns the job's exit
// status, its output and the milliseconds from the signal to its end.
struct SignalledJob {
  int status = 0;
  std::string log;
  double seconds = 0;
  bool signalled = false;
};
SignalledJob signal_rank1(const test_support::TempDir& dir, const std::string& command, const std::string& ck,
                          const std::string& signal) {
  const std::string mark = "SHRINK_TEST_MARK=" + fs::path(dir.path).filename().string();
  const std::string script =
      "(" + mark + " " + command + " > " + dir.file("log") + " 2>&1; echo $? > " + dir.file("status") + ") & " +
      "for i in $(seq 600); do [ -f " + ck + " ] && break; sleep 0.05; done; " +
      "for e in /proc/[0-9]*/environ; do tr '\\0' '\\n' < $e 2>/dev/null | grep -qx " + mark +
      " && tr '\\0' '\\n' < $e | grep -qx RANK=1 && p=${e#/proc/} && kill -" + signal +
      " ${p%/environ} && echo signalled; done; " +
      "start=$(date +%s%N); wait; end=$(date +%s%N); echo ms $(( (end - start) / 1000000 ))";
  std::ofstream(dir.file("signal.sh")) << script << "\n";
  auto r = run_command("bash " + dir.file("signal.sh"));
  SignalledJob job;
  job.signalled = r.output.find("signalled") != std::string::npos;
  std::ifstream(dir.file("status")) >> job.status;
  std::ifstream log_file(dir.file("log"));
  job.log.assign(std::istreambuf_iterator<char>(log_file), std::istreambuf_iterator<char>());
  const size_t ms = r.output.find("ms ");
  job.seconds = ms == std::string::npos ? 1e9 : std::stod(r.output.substr(ms + 3)) / 1000;
  return job;
}

// The arguments of a 40-epoch LeNet-5 training on 1024 images of `dir`/data (seeded)
// that checkpoints to `dir`/ck.pt every epoch and writes `dir`/out.onnx.
std::string long_training(const test_support::TempDir& dir, uint32_t seed) {
  test_support::write_idx_dataset(dir.file("data"), 1024, 64, 28, 3, seed);
  return " train --model lenet5 --epochs 40 --batch 32 --data " + dir.file("data") + " --checkpoint " +
         dir.file("ck.pt") + " -o " + dir.file("out.onnx");
}

}  // namespace

// One step (64 images, --batch 64): each of 2 ranks computes the gradient of its 32 and
// the average is the whole batch's, so the weights equal one process's to float rounding;
// half the batch per rank without the all-reduce, or its sum, would not.
TEST(Dist, TwoRanksTakeTheSameStepAsOneProcess) {
  test_support::TempDir dir;
  const std::string data = dir.file("data");
  test_support::write_idx_dataset(data, 64, 32, 28, 3, 1);
  const std::string common = " train --model lenet5 --epochs 1 --lr 0.1 --seed 3 --no-keep-best --data " + data;
  const std::string train = common + " --batch 64";
  auto one = run_command(cli() + train + " -o " + dir.file("one.onnx") + " --json");
  ASSERT_EQ(one.status, 0) << one.output;
  auto two = run_command(cli() + " --nproc 2" + train + " -o " + dir.file("two.onnx") + " --json");
  ASSERT_EQ(two.status, 0) << two.output;
  auto tr = run_command(torchrun(2) + cli() + train + " -o " + dir.file("torchrun.onnx"));
  ASSERT_EQ(tr.status, 0) << tr.output;
  auto half = run_command(cli() + common + " --batch 32 -o " + dir.file("half.onnx"));
  ASSERT_EQ(half.status, 0) << half.output;
  EXPECT_LT(max_difference(dir.file("one.onnx"), dir.file("two.onnx")), 1e-6);
  EXPECT_LT(max_difference(dir.file("one.onnx"), dir.file("torchrun.onnx")), 1e-6);
  EXPECT_GT(max_difference(dir.file("one.onnx"), dir.file("half.onnx")), 1e-4) << "the steps are not told apart";
  // Only rank 0 speaks: one JSON document on stdout.
  auto j = nlohmann::json::parse(two.output.substr(two.output.find('{')));
  EXPECT_EQ(j["epochs"], 1);
  // The epoch's evaluation, each rank scoring half the test set and the counts summed,
  // equals the whole test set scored in one process afterwards.
  EXPECT_EQ(j["history"][0]["test_accuracy"], j["test_accuracy"]);
  EXPECT_NEAR(j["history"][0]["test_loss"].get<double>(), j["test_loss"].get<double>(), 1e-6);
  // A global batch the ranks cannot share evenly is refused, naming the flag.
  auto odd = run_command(cli() + " --nproc 2" + common + " --batch 63 -o " + dir.file("odd.onnx"));
  EXPECT_NE(odd.status, 0);
  EXPECT_NE(odd.output.find("--batch 63 must be a multiple of the world size 2"), std::string::npos) << odd.output;
  // Both ranks refuse it; the launcher names whichever exited first.
  EXPECT_NE(odd.output.find(" of 2 exited with status 1; stopping the other ranks"), std::string::npos) << odd.output;
}

// kill -9 of rank 1 mid-training: the launcher names it and stops rank 0 (which also
// fails on its next all-reduce) well inside --dist-timeout; the checkpoint rank 0 wrote
// is whole, and --resume finishes the run in another world size.
TEST(Dist, AKilledRankStopsTheJobAndTheCheckpointResumes) {
  test_support::TempDir dir;
  const std::string ck = dir.file("ck.pt"), args = long_training(dir, 2);
  const std::string train = cli() + " --nproc 2 --dist-timeout 30" + args;
  SignalledJob job = signal_rank1(dir, train, ck, "9");
  ASSERT_TRUE(job.signalled) << job.log;
  EXPECT_NE(job.status, 0);
  // The launcher names the rank it reaped first: the killed one, or (if the kernel hands
  // back the survivor's exit first) rank 0, whose own error says what it lost.
  EXPECT_TRUE(job.log.find("shrink: error: rank 1 of 2 was killed by signal 9") != std::string::npos ||
              job.log.find("shrink: error: rank 0 of 2 exited with status 1") != std::string::npos)
      << job.log;
  EXPECT_LT(job.seconds, 15.0) << "the job took " << job.seconds << " s to stop after the kill";
  EXPECT_FALSE(fs::exists(dir.file("out.onnx")));
  // The checkpoint is whole: the job resumes from it and finishes, here in one process
  // (the global batch, and so the steps of an epoch, do not depend on the world size).
  auto resumed = run_command(cli() + args + " --resume --json");
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  auto j = nlohmann::json::parse(resumed.output.substr(resumed.output.find('{')));
  EXPECT_EQ(j["epochs"], 40);
  EXPECT_TRUE(fs::exists(dir.file("out.onnx")));
}

// Distillation with the teacher cache in 2 ranks: each rank runs the teacher on half the
// cache's batches and the sum gives both the whole cache, which rank 0 writes; it equals
// the one a single process writes, and the step on it equals the single process's.
TEST(Dist, DistillationBuildsTheTeacherCacheShardedAndStepsAsOneProcess) {
  test_support::TempDir dir;
  const std::string data = dir.file("data");
  test_support::write_idx_dataset(data, 600, 32, 28, 3, 4);
  auto t = run_command(cli() + " train --model lenet5 --epochs 1 --data " + data + " -o " + dir.file("teacher.onnx"));
  ASSERT_EQ(t.status, 0) << t.output;
  const std::string distill = " distill --teacher " + dir.file("teacher.onnx") +
                              " --student mlp --epochs 1 --batch 600 --seed 2 --no-keep-best --data " + data;
  auto one = run_command(cli() + distill + " --cache " + dir.file("c1") + " -o " + dir.file("one.onnx"));
  ASSERT_EQ(one.status, 0) << one.output;
  auto two = run_command(cli() + " --nproc 2" + distill + " --cache " + dir.file("c2") + " -o " + dir.file("two.onnx"));
  ASSERT_EQ(two.status, 0) << two.output;
  EXPECT_LT(max_difference(dir.file("one.onnx"), dir.file("two.onnx")), 1e-6);
  std::vector<fs::path> caches;
  for (const char* c : {"c1", "c2"})
    for (const auto& e : fs::directory_iterator(dir.file(c))) caches.push_back(e.path() / "logits0.npy");
  ASSERT_EQ(caches.size(), 2u) << "one finished cache directory each, no temporaries left";
  EXPECT_TRUE(at::equal(io::read_npy(caches[0].string()), io::read_npy(caches[1].string())));
}

// 3 epochs of LeNet-5 on Fashion-MNIST (the package's data) in 2 ranks reach the single
// process's test accuracy within 0.5 points (the same steps, in another float order and
// with each rank's shard of every epoch).
TEST(Dist, LeNet5InTwoRanksReachesTheSingleProcessAccuracy) {
  test_support::TempDir dir;
  const std::string train = " train --model lenet5 --epochs 3 --seed 1 --json -o ";
  auto one = run_command(cli() + train + dir.file("one.onnx"));
  ASSERT_EQ(one.status, 0) << one.output;
  auto two = run_command(cli() + " --nproc 2" + train + dir.file("two.onnx"));
  ASSERT_EQ(two.status, 0) << two.output;
  const double a1 = nlohmann::json::parse(one.output.substr(one.output.find('{')))["test_accuracy"];
  const auto j2 = nlohmann::json::parse(two.output.substr(two.output.find('{')));
  const double a2 = j2["test_accuracy"];
  EXPECT_EQ(j2["world_size"], 2);
  EXPECT_NEAR(a2, a1, 0.005) << "1 process " << a1 << ", 2 ranks " << a2;
  EXPECT_GT(a1, 0.85);
}

// --sync-bn: BatchNormalization's statistics over the global batch, so one step in 2
// ranks equals one process's (weights and running statistics); without it each rank
// normalises by its own half's statistics, as DDP does by default, and the step differs.
TEST(Dist, SyncBatchNormStepsAsOneProcess) {
  test_support::TempDir dir;
  const std::string data = dir.file("data");
  test_support::write_idx_dataset(data, 64, 32, 28, 3, 5);
  at::manual_seed(9);
  test_support::OnnxBuilder b;
  b.input("x", {-1, 1, 28, 28}).output("y");
  b.initializer("conv.weight", at::randn({6, 1, 3, 3}) * 0.5);
  b.initializer("bn.scale", at::ones({6}));
  b.initializer("bn.bias", at::zeros({6}));
  b.initializer("bn.mean", at::zeros({6}));
  b.initializer("bn.var", at::ones({6}));
  b.initializer("fc.weight", at::randn({3, 6}) * 0.5);
  b.initializer("fc.bias", at::zeros({3}));
  b.node("Conv", {"x", "conv.weight"}, {"c"}, "conv");
  b.node("BatchNormalization", {"c", "bn.scale", "bn.bias", "bn.mean", "bn.var"}, {"n"}, "bn");
  b.node("Relu", {"n"}, {"r"}, "relu");
  b.node("GlobalAveragePool", {"r"}, {"p"}, "pool");
  b.node("Flatten", {"p"}, {"f"}, "flatten");
  auto& fc = b.node("Gemm", {"f", "fc.weight", "fc.bias"}, {"y"}, "fc");
  test_support::OnnxBuilder::attr(fc, "transB", int64_t{1});
  const std::string model = b.save(dir.file("bn.onnx"));
  const std::string train = " train --model " + model + " --epochs 1 --batch 64 --lr 0.5 --no-keep-best --data " + data;
  auto one = run_command(cli() + train + " -o " + dir.file("one.onnx"));
  ASSERT_EQ(one.status, 0) << one.output;
  auto sync = run_command(cli() + " --nproc 2 --sync-bn" + train + " -o " + dir.file("sync.onnx"));
  ASSERT_EQ(sync.status, 0) << sync.output;
  auto local = run_command(cli() + " --nproc 2" + train + " -o " + dir.file("local.onnx"));
  ASSERT_EQ(local.status, 0) << local.output;
  EXPECT_LT(max_difference(dir.file("one.onnx"), dir.file("sync.onnx")), 1e-5);
  EXPECT_GT(max_difference(dir.file("one.onnx"), dir.file("local.onnx")), 1e-4);
}

// A rank that hangs (SIGSTOP): the others' next collective fails after --dist-timeout,
// and the launcher names the rank that did not stop, kills it and exits non-zero.
TEST(Dist, AHungRankStopsTheJobAfterTheTimeout) {
  test_support::TempDir dir;
  const std::string ck = dir.file("ck.pt");
  const std::string train = cli() + " --nproc 2 --dist-timeout 4" + long_training(dir, 6);
  SignalledJob job = signal_rank1(dir, train, ck, "STOP");
  ASSERT_TRUE(job.signalled) << job.log;
  EXPECT_NE(job.status, 0);
  EXPECT_NE(job.log.find("failed on rank 0 of 2"), std::string::npos) << job.log;
  EXPECT_NE(job.log.find("rank 1 of 2 did not stop within 5 s of SIGTERM (hung?): killing it"), std::string::npos)
      << job.log;
  EXPECT_LT(job.seconds, 25.0) << "the job took " << job.seconds << " s to stop after the hang";
}

// Ctrl-C (SIGINT to the job's process group) reaches the ranks between different steps;
// the flag rides on the gradient all-reduce, so all stop after the same step, rank 0
// checkpoints it, the launcher exits 130, and --resume finishes.
TEST(Dist, CtrlCStopsEveryRankAfterTheSameStepWithACheckpoint) {
  test_support::TempDir dir;
  const std::string ck = dir.file("ck.pt"), args = long_training(dir, 7);
  const std::string script = "setsid sh -c 'exec " + cli() + " --nproc 2" + args + "' > " + dir.file("log") +
                             " 2>&1 & P=$!; for i in $(seq 600); do [ -f " + ck +
                             " ] && break; sleep 0.05; done; sleep 0.3; kill -INT -$P; wait $P; echo status $?";
  std::ofstream(dir.file("int.sh")) << script << "\n";
  auto r = run_command("bash " + dir.file("int.sh"));
  EXPECT_NE(r.output.find("status 130"), std::string::npos) << r.output;
  std::ifstream log_file(dir.file("log"));
  std::string log((std::istreambuf_iterator<char>(log_file)), std::istreambuf_iterator<char>());
  EXPECT_NE(log.find("interrupted, checkpoint saved to " + ck), std::string::npos) << log;
  EXPECT_EQ(log.find("shrink: error"), std::string::npos) << log;
  auto resumed = run_command(cli() + args + " --resume --json");
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_TRUE(fs::exists(dir.file("out.onnx")));
}

// torchrun's variables, wrong or missing: one-line errors naming the variable.
TEST(Dist, BadEnvironmentIsAOneLineError) {
  const std::string info = cli() + " info none.onnx";  // the environment is read first
  auto r = run_command("WORLD_SIZE=2 " + info);
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.output, "shrink: error: environment variable RANK is not set (WORLD_SIZE is 2): each process needs its rank\n");
  r = run_command("RANK=5 WORLD_SIZE=2 " + info);
  EXPECT_EQ(r.output, "shrink: error: environment variable RANK: expected an integer from 0 to 1, got '5'\n");
  r = run_command("RANK=1 WORLD_SIZE=2 MASTER_ADDR= " + info);
  EXPECT_NE(r.output.find("environment variable MASTER_ADDR is not set"), std::string::npos) << r.output;
  r = run_command("RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=70000 " + info);
  EXPECT_NE(r.output.find("MASTER_PORT: expected an integer from 1 to 65535, got '70000'"), std::string::npos) << r.output;
  r = run_command(cli() + " --nproc 0 info none.onnx");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--nproc"), std::string::npos) << r.output;
}
