// Kill -9 safety: shrink train, prune --finetune and quantize --mode qat are
// SIGKILLed at seeded random moments (during training, checkpoint and model
// writes alike). Afterwards every file at an output name must be a complete
// version, the previous one or the new one (it imports, and a checkpoint
// resumes), and `train --resume` must finish the run having lost at most the
// epoch that was under way.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <regex>

#include "support/limited_process.h"
#include "support/onnx_builder.h"

using namespace shrink;
namespace fs = std::filesystem;

namespace {

std::string cli() { return SHRINK_CLI; }

// 256 train and 64 test 28x28 images, 3 classes, IDX layout.
void write_data(const std::string& dir) {
  auto write_idx = [&](const std::string& name, const std::vector<uint32_t>& dims, std::mt19937& rng, int mod) {
    std::string s = {0, 0, 0x08, static_cast<char>(dims.size())};
    size_t n = 1;
    for (uint32_t d : dims) {
      n *= d;
      for (int shift : {24, 16, 8, 0}) s.push_back(static_cast<char>((d >> shift) & 0xff));
    }
    for (size_t i = 0; i < n; ++i) s.push_back(static_cast<char>(rng() % mod));
    std::ofstream(dir + "/" + name, std::ios::binary) << s;
  };
  std::mt19937 rng(7);
  write_idx("train-images-idx3-ubyte", {256, 28, 28}, rng, 256);
  write_idx("train-labels-idx1-ubyte", {256}, rng, 3);
  write_idx("t10k-images-idx3-ubyte", {64, 28, 28}, rng, 256);
  write_idx("t10k-labels-idx1-ubyte", {64}, rng, 3);
}

int count_epoch_lines(const std::string& output, int epochs) {
  std::regex line("epoch [0-9]+/" + std::to_string(epochs) + " ");
  return static_cast<int>(std::distance(std::sregex_iterator(output.begin(), output.end(), line), std::sregex_iterator()));
}

// timeout -s KILL kills its process group, itself included.
bool was_killed(const test_support::LimitedResult& r) { return r.signal == 9 || r.status == 137; }

bool imports(const std::string& model) {
  return test_support::run_limited("exec " + cli() + " info " + model + " >/dev/null", 60).status == 0;
}

// Seeded kill moments spread over the run's length (startup included).
std::vector<double> kill_moments(double run_seconds, int n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0.05, std::max(0.2, run_seconds));
  std::vector<double> t;
  for (int i = 0; i < n; ++i) t.push_back(u(rng));
  return t;
}

}  // namespace

TEST(KillSafety, TrainLeavesCompleteFilesAndResumesLosingAtMostAnEpoch) {
  test_support::TempDir dir;
  write_data(dir.path);
  const std::string base = cli() + " --threads 1 train --model mlp --epochs 4 --batch 16 --data " + dir.path;
  // The previous complete versions the killed runs would overwrite.
  auto ref = test_support::run_limited("exec " + base + " --checkpoint " + dir.file("ref.ckpt") + " -o " + dir.file("ref.onnx"), 120);
  ASSERT_EQ(ref.status, 0) << ref.output;
  ASSERT_EQ(count_epoch_lines(ref.output, 4), 4) << ref.output;

  int killed = 0, resumed_from_checkpoint = 0;
  for (double t : kill_moments(ref.seconds, 12, 2026)) {
    SCOPED_TRACE("killed after " + std::to_string(t) + " s");
    fs::remove(dir.file("ck"));
    fs::copy_file(dir.file("ref.onnx"), dir.file("out.onnx"), fs::copy_options::overwrite_existing);
    auto r = test_support::run_limited("exec timeout -s KILL " + std::to_string(t) + " " + base + " --checkpoint " +
                                           dir.file("ck") + " -o " + dir.file("out.onnx"),
                                       120);
    if (r.status == 0) continue;  // finished before the kill
    ASSERT_TRUE(was_killed(r)) << r.status << " " << r.output;
    ++killed;
    const int done = count_epoch_lines(r.output, 4);
    EXPECT_TRUE(imports(dir.file("out.onnx"))) << "out.onnx is not a complete model";
    if (!fs::exists(dir.file("ck"))) {
      EXPECT_LE(done, 1) << "epochs finished but no checkpoint";
      continue;
    }
    auto resumed = test_support::run_limited(
        "exec " + base + " --resume --checkpoint " + dir.file("ck") + " -o " + dir.file("out.onnx"), 120);
    ASSERT_EQ(resumed.status, 0) << "the checkpoint did not resume: " << resumed.output;
    ++resumed_from_checkpoint;
    const int redone = count_epoch_lines(resumed.output, 4);
    EXPECT_LE(redone, 4 - done + 1) << "the resumed run repeated more than the epoch under way";
    EXPECT_TRUE(imports(dir.file("out.onnx")));
  }
  // One kill that lands after the first checkpoint whatever the machine's load: the
  // seeded moments above are fractions of the reference run, and a loaded machine can
  // push every one of them before the first epoch ends.
  {
    fs::remove(dir.file("ck"));
    const std::string train = base + " --checkpoint " + dir.file("ck") + " -o " + dir.file("out.onnx");
    auto r = test_support::run_limited("exec bash -c '" + train + " & p=$!; while [ ! -e " + dir.file("ck") +
                                           " ] && kill -0 $p 2>/dev/null; do sleep 0.02; done; kill -KILL $p; wait $p'",
                                       120);
    if (was_killed(r) && fs::exists(dir.file("ck"))) {
      ++killed;
      EXPECT_TRUE(imports(dir.file("out.onnx")));
      auto resumed = test_support::run_limited(
          "exec " + base + " --resume --checkpoint " + dir.file("ck") + " -o " + dir.file("out.onnx"), 120);
      ASSERT_EQ(resumed.status, 0) << "the checkpoint did not resume: " << resumed.output;
      ++resumed_from_checkpoint;
      EXPECT_LE(count_epoch_lines(resumed.output, 4), 4) << resumed.output;
      EXPECT_TRUE(imports(dir.file("out.onnx")));
    }
  }
  EXPECT_GE(killed, 6);
  EXPECT_GE(resumed_from_checkpoint, 1);
  // Only complete files under the output names; SIGKILL can leave a hidden temporary, never a partial target.
  for (const auto& e : fs::directory_iterator(dir.path)) {
    const std::string name = e.path().filename().string();
    if (name.size() > 5 && name.substr(name.size() - 5) == ".onnx") EXPECT_TRUE(imports(e.path().string())) << name;
  }
}

TEST(KillSafety, PruneFinetuneAndQatNeverLeaveAPartialModel) {
  test_support::TempDir dir;
  write_data(dir.path);
  auto ref = test_support::run_limited("exec " + cli() + " --threads 1 train --model mlp --epochs 1 --batch 16 --data " +
                                           dir.path + " -o " + dir.file("model.onnx"),
                                       120);
  ASSERT_EQ(ref.status, 0) << ref.output;
  const std::vector<std::string> commands = {
      "prune " + dir.file("model.onnx") + " -o " + dir.file("out.onnx") + " --amount 0.5 --schedule iterative:2 --finetune 1 --data " + dir.path,
      "quantize " + dir.file("model.onnx") + " -o " + dir.file("out.onnx") + " --mode qat --epochs 2 --calib-batches 2 --data " + dir.path,
  };
  for (const std::string& command : commands) {
    SCOPED_TRACE(command);
    auto full = test_support::run_limited("exec " + cli() + " --threads 1 " + command, 300);
    ASSERT_EQ(full.status, 0) << full.output;
    int killed = 0;
    for (double t : kill_moments(full.seconds, 8, 17)) {
      fs::copy_file(dir.file("model.onnx"), dir.file("out.onnx"), fs::copy_options::overwrite_existing);
      auto r = test_support::run_limited("exec timeout -s KILL " + std::to_string(t) + " " + cli() + " --threads 1 " + command, 300);
      if (was_killed(r)) ++killed;
      EXPECT_TRUE(imports(dir.file("out.onnx"))) << "killed after " << t << " s: out.onnx is not a complete model";
    }
    EXPECT_GE(killed, 4);
  }
}
