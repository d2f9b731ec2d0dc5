// shrink compress end to end on a small learnable data set: the search keeps every
// candidate with its lineage, picks the smallest within the budget, writes the files
// it promises, refuses to overwrite a previous run, reuses nothing stale, and after
// kill -9 at any moment `--resume` finishes with the uninterrupted run's result.
#include <gtest/gtest.h>

#include <filesystem>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <chrono>

#include "shrink/core/atomic_file.h"
#include "shrink/data/image.h"
#include "support/limited_process.h"
#include "support/onnx_builder.h"
#include "support/process.h"

using namespace shrink;
namespace fs = std::filesystem;
using test_support::run_command;

namespace {

std::string cli() { return SHRINK_CLI; }

// 600 train and 150 test 28x28 images in IDX layout, 3 classes: class k has a bright
// band at rows 9k..9k+7 over noise, so a small MLP learns it in an epoch or two.
void write_data(const std::string& dir) {
  std::mt19937 rng(11);
  auto write = [&](const std::string& prefix, int n) {
    std::string images = {0, 0, 0x08, 3}, labels = {0, 0, 0x08, 1};
    for (uint32_t d : {static_cast<uint32_t>(n), 28u, 28u})
      for (int shift : {24, 16, 8, 0}) images.push_back(static_cast<char>((d >> shift) & 0xff));
    for (int shift : {24, 16, 8, 0}) labels.push_back(static_cast<char>((n >> shift) & 0xff));
    for (int i = 0; i < n; ++i) {
      const int k = static_cast<int>(rng() % 3);
      labels.push_back(static_cast<char>(k));
      for (int y = 0; y < 28; ++y)
        for (int x = 0; x < 28; ++x) {
          int v = static_cast<int>(rng() % 90);
          if (y >= 9 * k && y < 9 * k + 8 && rng() % 4 != 0) v += 110;
          images.push_back(static_cast<char>(v));
        }
    }
    std::ofstream(dir + "/" + prefix + "-images-idx3-ubyte", std::ios::binary) << images;
    std::ofstream(dir + "/" + prefix + "-labels-idx1-ubyte", std::ios::binary) << labels;
  };
  write("train", 600);
  write("t10k", 150);
}

const char* kRecipe =
    "target: size\n"
    "max_drop: 5\n"
    "validation_samples: 100\n"
    "stages:\n"
    "  - prune: {method: global, amount: [0.5, 0.8, 0.95], finetune: 1, lr: 0.05, batch: 32}\n"
    "  - codebook: {bits: [3, 5]}\n";

struct Fixture {
  test_support::TempDir dir;
  std::string data, model, recipe;
  Fixture() {
    data = dir.file("data");
    fs::create_directories(data);
    write_data(data);
    model = dir.file("mlp.onnx");
    auto r = run_command(cli() + " train --model mlp --epochs 2 --lr 0.05 --batch 32 --holdout 100 --data " + data + " -o " +
                         model + " --json");
    EXPECT_EQ(r.status, 0) << r.output;
    recipe = dir.file("recipe.yaml");
    std::ofstream(recipe) << kRecipe;
  }
  // compress with `recipe_text` as the recipe into dir/NAME; the report (the run must succeed).
  nlohmann::json run_recipe(const std::string& name, const std::string& recipe_text) const {
    std::ofstream(recipe) << recipe_text;
    auto r = run_command(compress(dir.file(name)));
    EXPECT_EQ(r.status, 0) << r.output;
    return r.status == 0 ? nlohmann::json::parse(read_file(dir.file(name) + "/report.json")) : nlohmann::json();
  }
  std::string compress(const std::string& out, const std::string& extra = "") const {
    return cli() + " compress " + model + " -o " + out + " --recipe " + recipe + " --data " + data + " --no-ort --json" + extra;
  }
};

nlohmann::json report_of(const std::string& out) { return nlohmann::json::parse(read_file(out + "/report.json")); }

// What a run decided: the chosen lineage with each step's settings and figures.
nlohmann::json decision(const nlohmann::json& report) {
  nlohmann::json d = nlohmann::json::array();
  for (int i : report["lineage"]) {
    const auto& c = report["candidates"][i];
    d.push_back({{"stage", c["stage"]}, {"settings", c["settings"]}, {"accuracy", c["metrics"]["accuracy"]},
                 {"bytes", c["metrics"]["bytes"]}, {"nonzeros", c["metrics"]["nonzeros"]}});
  }
  return d;
}

}  // namespace

TEST(Compress, SearchesKeepsLineageAndChoosesTheSmallestWithinBudget) {
  Fixture f;
  const std::string out = f.dir.file("out");
  auto r = run_command(f.compress(out));
  ASSERT_EQ(r.status, 0) << r.output;
  nlohmann::json summary = nlohmann::json::parse(r.output);
  nlohmann::json rep = report_of(out);
  const auto& cands = rep["candidates"];
  ASSERT_GE(cands.size(), 4u);
  EXPECT_EQ(cands[0]["stage"], "original");
  EXPECT_TRUE(rep["validation"]["held_out_in_training"].get<bool>());  // train --holdout recorded it
  EXPECT_EQ(rep["validation"]["samples"].get<int>(), 100);
  const double base = cands[0]["metrics"]["accuracy"];
  EXPECT_GT(base, 0.8) << "the synthetic data should be learnt";
  // Lineage: every parent is an earlier candidate; prune levels chain, codebooks follow prunes.
  for (size_t i = 1; i < cands.size(); ++i) {
    const int p = cands[i]["parent"];
    ASSERT_GE(p, 0);
    ASSERT_LT(p, static_cast<int>(i));
    if (cands[i]["stage"] == "codebook") {
      EXPECT_EQ(cands[p]["stage"], "prune");
    }
    // in_budget is the drop against the budget, recomputed here
    const double drop = (base - cands[i]["metrics"]["accuracy"].get<double>()) * 100;
    EXPECT_EQ(cands[i]["in_budget"].get<bool>(), drop <= 5 + 1e-9) << i;
  }
  // The chosen one: within budget and the smallest such.
  const int chosen = rep["chosen"];
  EXPECT_TRUE(cands[chosen]["in_budget"].get<bool>());
  for (const auto& c : cands) {
    if (c["in_budget"].get<bool>()) {
      EXPECT_LE(cands[chosen]["metrics"]["bytes"], c["metrics"]["bytes"]);
    }
  }
  EXPECT_NE(chosen, 0) << "pruning this MLP to half should stay within 5 points";
  EXPECT_EQ(summary["chosen"], chosen);
  // The files promised: model.onnx as measured, the Pareto set, the report.
  EXPECT_NEAR(static_cast<double>(fs::file_size(out + "/model.onnx")), cands[chosen]["metrics"]["bytes"].get<double>(), 64);
  int pareto = 0;
  for (const auto& c : cands)
    if (c.contains("file")) {
      ++pareto;
      EXPECT_TRUE(fs::exists(out + "/" + c["file"].get<std::string>()));
    }
  EXPECT_GE(pareto, 1);
  // The smallest within budget cannot be beaten on both bytes and accuracy.
  EXPECT_TRUE(cands[chosen]["pareto_bytes"].get<bool>());
  EXPECT_TRUE(cands[chosen].contains("file"));
  EXPECT_LT(cands[chosen]["metrics"]["bytes"].get<double>(), cands[0]["metrics"]["bytes"].get<double>() / 4);
  // The chosen model as a user would run it: eval agrees with the report's test figure.
  auto ev = run_command(cli() + " eval " + out + "/model.onnx --data " + f.data + " --json");
  ASSERT_EQ(ev.status, 0) << ev.output;
  EXPECT_NEAR(nlohmann::json::parse(ev.output)["accuracy"].get<double>(), rep["final"]["chosen"]["accuracy"].get<double>(), 1e-9);
  // The reproducing command of a prune step is a real command line.
  EXPECT_EQ(cands[1]["command"].get<std::string>().rfind("shrink prune " + f.model + " -o OUT.onnx", 0), 0u);
  // report.html: self-contained (inline SVG, no script, nothing fetched).
  const std::string html = read_file(out + "/report.html");
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("href="), std::string::npos);
  EXPECT_NE(html.find("chosen"), std::string::npos);
}

TEST(Compress, ResumeReusesEverythingAndAChangedModelReusesNothing) {
  Fixture f;
  const std::string out = f.dir.file("out");
  ASSERT_EQ(run_command(f.compress(out)).status, 0);
  const nlohmann::json first = report_of(out);
  // Again without --resume: refused, naming the directory.
  auto again = run_command(f.compress(out));
  EXPECT_NE(again.status, 0);
  EXPECT_NE(again.output.find(out + ": holds a previous compress run"), std::string::npos) << again.output;
  // With --resume: every candidate from the cache, the same decision.
  auto resumed = run_command(f.compress(out, " --resume"));
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  const nlohmann::json second = report_of(out);
  for (const auto& c : second["candidates"]) EXPECT_TRUE(c["cached"].get<bool>()) << c["index"];
  EXPECT_EQ(decision(second), decision(first));
  // A changed model (another training seed) in the same directory: new keys, nothing reused.
  auto r = run_command(cli() + " train --model mlp --epochs 2 --lr 0.05 --batch 32 --seed 5 --holdout 100 --data " + f.data +
                       " -o " + f.model + " --json");
  ASSERT_EQ(r.status, 0) << r.output;
  ASSERT_EQ(run_command(f.compress(out, " --resume")).status, 0);
  const nlohmann::json third = report_of(out);
  for (const auto& c : third["candidates"]) EXPECT_FALSE(c["cached"].get<bool>()) << c["index"];
  EXPECT_NE(third["candidates"][0]["id"], first["candidates"][0]["id"]);
}

// --storage sparse: every candidate written without decode nodes (the sizes searched on
// are those of that form), and the storage is part of the cache key: resuming a compact
// run's directory with it reuses nothing.
TEST(Compress, StorageIsInEveryFileAndInTheCacheKey) {
  Fixture f;
  const std::string out = f.dir.file("out");
  ASSERT_EQ(run_command(f.compress(out)).status, 0);
  const nlohmann::json compact = report_of(out);
  EXPECT_EQ(compact["storage"], "compact");
  auto r = run_command(f.compress(out, " --resume --storage sparse"));
  ASSERT_EQ(r.status, 0) << r.output;
  const nlohmann::json sparse = report_of(out);
  EXPECT_EQ(sparse["storage"], "sparse");
  for (const auto& c : sparse["candidates"]) EXPECT_FALSE(c["cached"].get<bool>()) << c["index"];
  bool larger = false;
  for (size_t i = 1; i < sparse["candidates"].size() && i < compact["candidates"].size(); ++i)
    larger = larger || sparse["candidates"][i]["metrics"]["bytes"] > compact["candidates"][i]["metrics"]["bytes"];
  EXPECT_TRUE(larger) << "sparse storage wrote no candidate larger than compact storage";
  auto info = run_command(cli() + " info " + out + "/model.onnx --json");
  ASSERT_EQ(info.status, 0) << info.output;
  for (const auto& t : nlohmann::json::parse(info.output)["storage"]) {
    const std::string form = t["form"];
    EXPECT_TRUE(form == "dense" || form == "sparse") << t["name"] << ": " << form;
  }
  EXPECT_NE(sparse["candidates"][sparse["lineage"].back().get<int>()]["command"].get<std::string>().find(
                "--storage sparse"),
            std::string::npos);
}

// Data-parallel: 2 ranks run the same search (the fine-tuning sharded, what depends on
// the clock measured by rank 0 and broadcast) and decide as one process does.
TEST(Compress, TwoRanksDecideAsOneProcess) {
  Fixture f;
  ASSERT_EQ(run_command(f.compress(f.dir.file("one"))).status, 0);
  auto r = run_command(cli() + " --nproc 2 compress " + f.model + " -o " + f.dir.file("two") + " --recipe " + f.recipe +
                       " --data " + f.data + " --no-ort --json");
  ASSERT_EQ(r.status, 0) << r.output;
  const nlohmann::json one = decision(report_of(f.dir.file("one"))), two = decision(report_of(f.dir.file("two")));
  ASSERT_EQ(one.size(), two.size());
  for (size_t i = 0; i < one.size(); ++i) {
    EXPECT_EQ(one[i]["stage"], two[i]["stage"]);
    EXPECT_EQ(one[i]["settings"], two[i]["settings"]);
    EXPECT_NEAR(one[i]["accuracy"].get<double>(), two[i]["accuracy"].get<double>(), 0.02);
  }
}

TEST(Compress, KilledAnywhereThenResumedGivesTheUninterruptedResult) {
  Fixture f;
  const std::string ref = f.dir.file("ref");
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(run_command(f.compress(ref)).status, 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const nlohmann::json expected = decision(report_of(ref));
  auto resume_and_compare = [&](const std::string& out) {
    auto resumed = run_command(f.compress(out, " --resume"));
    ASSERT_EQ(resumed.status, 0) << resumed.output;
    EXPECT_EQ(decision(report_of(out)), expected);
    // Nothing half-written left under a final name: every cache entry reads back.
    for (const auto& e : fs::directory_iterator(out + "/cache")) {
      if (e.path().extension() == ".json") {
        EXPECT_NO_THROW(nlohmann::json::parse(read_file(e.path().string())));
      }
    }
  };
  // Kills that land mid-search whatever the machine's load: after the 2nd, 3rd and
  // 5th cache entry is written (the original, then candidates), while the next
  // candidate's stage is training or being written.
  int killed = 0;
  for (int entries : {2, 3, 5}) {
    const std::string out = f.dir.file("at" + std::to_string(entries));
    SCOPED_TRACE("killed after " + std::to_string(entries) + " cache entries");
    auto r = test_support::run_limited(
        "exec bash -c '" + f.compress(out) + " >/dev/null & p=$!; while [ \"$(ls " + out +
            "/cache/*.json 2>/dev/null | wc -l)\" -lt " + std::to_string(entries) +
            " ] && kill -0 $p 2>/dev/null; do sleep 0.01; done; kill -KILL $p; wait $p'",
        600);
    if (r.status == 0) continue;  // finished first (not expected: the recipe makes 6 or more)
    ++killed;
    resume_and_compare(out);
  }
  EXPECT_GE(killed, 3);
  // And at seeded moments of the reference run's length (may finish first on a busy machine).
  std::mt19937 rng(2026);
  for (int k = 0; k < 2; ++k) {
    const std::string out = f.dir.file("run" + std::to_string(k));
    const double at = 0.3 + std::uniform_real_distribution<double>(0.1, 0.8)(rng) * seconds;
    SCOPED_TRACE("killed after " + std::to_string(at) + " s");
    auto r = test_support::run_limited("timeout -s KILL " + std::to_string(at) + " " + f.compress(out) + " >/dev/null", 600);
    if (r.status != 0) resume_and_compare(out);
  }
}

TEST(Compress, BadInputIsOneLineError) {
  Fixture f;
  auto r = run_command(cli() + " compress " + f.model + " -o " + f.dir.file("o") + " --recipe " + f.dir.file("none.yaml"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("none.yaml"), std::string::npos) << r.output;
  std::ofstream(f.dir.file("bad.yaml")) << "stages:\n  - prune: {amount: 0.5, finetune: -1}\n";
  r = run_command(cli() + " compress " + f.model + " -o " + f.dir.file("o") + " --recipe " + f.dir.file("bad.yaml"));
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(r.output, "shrink: error: " + f.dir.file("bad.yaml") + ":2: stage 1 (prune): 'finetune': expected epochs >= 0\n");
  r = run_command(cli() + " compress " + f.model + " -o " + f.dir.file("o") + " --target speed");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--target"), std::string::npos) << r.output;
  // Timing in ONNX Runtime while told not to use it.
  r = run_command(cli() + " compress " + f.model + " -o " + f.dir.file("o") + " --latency-in onnxruntime --no-ort");
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(r.output, "shrink: error: --no-ort: latency is measured in onnxruntime for this search (--latency-in or the "
                      "recipe's latency_in)\n");
  r = run_command(cli() + " compress " + f.model + " -o " + f.dir.file("o") + " --latency-in tensorrt");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--latency-in"), std::string::npos) << r.output;
  // The flag reaches the recipe.
  r = run_command(cli() + " compress " + f.model + " -o " + f.dir.file("o") +
                  " --target latency --latency-in onnxruntime --print-recipe");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(nlohmann::json::parse(r.output)["latency_in"], "onnxruntime");
}

TEST(Compress, ReportRendersInHeadlessChromium) {
  if (std::system("command -v chromium >/dev/null 2>&1") != 0) GTEST_SKIP() << "chromium not installed (scripts/setup.sh installs it)";
  Fixture f;
  const std::string out = f.dir.file("out");
  ASSERT_EQ(run_command(f.compress(out)).status, 0);
  const std::string png = f.dir.file("report.png");
  auto r = test_support::run_limited("chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,1600 --screenshot=" +
                                         png + " file://" + out + "/report.html",
                                     120);
  ASSERT_TRUE(fs::exists(png)) << r.output;
  // Not blank: the charts and tables put many distinct colours on the page.
  data::Image img = data::read_image(png);
  ASSERT_GT(img.width, 1000);
  std::set<uint32_t> colours;
  const size_t step = static_cast<size_t>(img.channels);
  ASSERT_GE(step, 3u);
  for (size_t i = 0; i + 2 < img.pixels.size(); i += step * 7)
    colours.insert(img.pixels[i] << 16 | img.pixels[i + 1] << 8 | img.pixels[i + 2]);
  EXPECT_GT(colours.size(), 50u);
}

TEST(Compress, AutoBitsGivesEachLayerTheFewestBitsWithinItsDrop) {
  Fixture f;
  // Any drop allowed: every layer takes the fewest bits (2); none allowed below zero
  // points is impossible to beat, so every layer keeps --bits unless 2..5 bits lose nothing.
  auto r = run_command(cli() + " quantize " + f.model + " -o " + f.dir.file("a.onnx") +
                       " --mode codebook --bits 6 --auto-bits-drop 100 --no-latency --data " + f.data + " --json");
  ASSERT_EQ(r.status, 0) << r.output;
  nlohmann::json j = nlohmann::json::parse(r.output);
  ASSERT_TRUE(j.contains("auto_bits")) << r.output;
  ASSERT_EQ(j["auto_bits"]["chosen"].size(), 2u);  // the MLP's two Gemms
  for (const auto& [layer, bits] : j["auto_bits"]["chosen"].items()) EXPECT_EQ(bits.get<int>(), 2) << layer;
  for (const auto& l : j["layers"]) EXPECT_EQ(l["bits"].get<int>(), 2) << l["node"];
  // A drop no width can keep (negative is refused; a tiny one on a hard layer): the
  // trials are recorded per layer and the choice is the first width within it.
  r = run_command(cli() + " quantize " + f.model + " -o " + f.dir.file("b.onnx") +
                  " --mode codebook --bits 6 --auto-bits-drop 0.0001 --no-latency --data " + f.data + " --json");
  ASSERT_EQ(r.status, 0) << r.output;
  j = nlohmann::json::parse(r.output);
  const double dense = j["auto_bits"]["dense_accuracy"];
  for (const auto& [layer, bits] : j["auto_bits"]["chosen"].items()) {
    const auto& tried = j["auto_bits"]["layers"][layer];
    for (const auto& [b, acc] : tried.items()) {
      const bool within = (dense - acc.get<double>()) * 100 <= 0.0001;
      // every width tried below the chosen one lost more than the drop
      if (std::stoi(b) < bits.get<int>()) {
        EXPECT_FALSE(within) << layer << " " << b;
      }
    }
  }
}

TEST(Compress, OptionalDistillStageOffersAStudentAndKeepsTheTeacherLine) {
  Fixture f;
  std::ofstream(f.dir.file("kd.yaml")) << "max_drop: 50\nvalidation_samples: 100\nkeep: 2\nstages:\n"
                                          "  - distill: {student: mlp, width: 0.25, epochs: 1, lr: 0.05, batch: 32, optional: true}\n"
                                          "  - prune: {method: global, amount: 0.5}\n";
  const std::string out = f.dir.file("kd");
  auto r = run_command(cli() + " compress " + f.model + " -o " + out + " --recipe " + f.dir.file("kd.yaml") + " --data " + f.data +
                       " --no-ort --json");
  ASSERT_EQ(r.status, 0) << r.output;
  const nlohmann::json rep = report_of(out);
  const auto& c = rep["candidates"];
  ASSERT_EQ(c.size(), 4u);  // original, the student, a pruned child of each
  EXPECT_EQ(c[1]["stage"], "distill");
  EXPECT_LT(c[1]["metrics"]["parameters"].get<int64_t>(), c[0]["metrics"]["parameters"].get<int64_t>() / 3);
  EXPECT_EQ(c[1]["report"]["teacher_parameters"], c[0]["metrics"]["parameters"]);
  std::set<int> parents = {c[2]["parent"].get<int>(), c[3]["parent"].get<int>()};
  EXPECT_EQ(parents, (std::set<int>{0, 1}));  // optional: the original goes on beside the student
  EXPECT_EQ(c[1]["command"].get<std::string>().rfind("shrink distill --teacher " + f.model + " -o OUT.onnx --alpha 0.5", 0), 0u)
      << c[1]["command"];
}

TEST(Compress, TrialLimitStopsTheSearchAndStillWritesTheBestSoFar) {
  Fixture f;
  const std::string out = f.dir.file("lim");
  auto r = run_command(f.compress(out, " --trials 2"));
  ASSERT_EQ(r.status, 0) << r.output;
  const nlohmann::json rep = report_of(out);
  EXPECT_EQ(rep["candidates"].size(), 3u);  // the original and two made
  bool said = false;
  for (const auto& n : rep["notes"]) said = said || n.get<std::string>().find("trial limit reached (2") != std::string::npos;
  EXPECT_TRUE(said) << rep["notes"];
  EXPECT_TRUE(fs::exists(out + "/model.onnx"));
  EXPECT_TRUE(fs::exists(out + "/report.html"));
}

// A stage that throws on one candidate fails that candidate, not the search: it is listed
// in report.json's "failed" with its error and a note, the other alternatives go on, and
// model.onnx is still the best within the budget.
TEST(Compress, AFailingCandidateIsReportedAndTheSearchGoesOn) {
  Fixture f;
  const std::string out = f.dir.file("fail");
  const nlohmann::json rep = f.run_recipe("fail", "target: size\nmax_drop: 5\nvalidation_samples: 100\nstages:\n"
                                                "  - prune: {method: global, amount: 0.5, finetune: 1, lr: 0.05, batch: 32}\n"
                                                "  - factorize: {layers: [[nope], [fc]], rank: \"4\"}\n");
  ASSERT_FALSE(rep.is_null());
  ASSERT_EQ(rep["failed"].size(), 1u) << rep["failed"];
  EXPECT_EQ(rep["failed"][0]["stage"], "factorize");
  EXPECT_EQ(rep["failed"][0]["settings"]["layers"], nlohmann::json::array({"nope"}));
  EXPECT_NE(rep["failed"][0]["error"].get<std::string>().find("no node named 'nope'"), std::string::npos) << rep["failed"];
  bool said = false;
  for (const auto& n : rep["notes"]) said = said || n.get<std::string>().find("failed: ") != std::string::npos;
  EXPECT_TRUE(said) << rep["notes"];
  // The other alternative was made; nothing of the failed one is left in the cache.
  int factorized = 0;
  for (const auto& c : rep["candidates"]) factorized += c["stage"] == "factorize";
  EXPECT_EQ(factorized, 1);
  int cached = 0;
  for (const auto& e : fs::directory_iterator(out + "/cache")) cached += e.path().extension() == ".onnx";
  EXPECT_EQ(cached, static_cast<int>(rep["candidates"].size()));
  EXPECT_TRUE(fs::exists(out + "/model.onnx"));
}

// round_to: auto times each multiple (1, 8, 16) on the parent pruned once to every level
// and runs each level of the chain with the multiple that timed fastest there; the picks
// and the timings are in report.json, and --resume reads the picks back instead of timing
// again.
TEST(Compress, RoundToAutoTimesEachMultipleAndChainsWithTheFastest) {
  Fixture f;
  const std::string out = f.dir.file("auto");
  const nlohmann::json rep = f.run_recipe("auto", "target: latency\nmax_drop: 50\nvalidation_samples: 100\nstages:\n"
                                                "  - prune: {method: ln-structured, amount: [0.3, 0.6], round_to: auto, finetune: 0}\n");
  ASSERT_FALSE(rep.is_null());
  ASSERT_EQ(rep["probes"].size(), 1u) << rep;
  const auto& probe = rep["probes"][0];
  ASSERT_EQ(probe["round_to"].size(), 2u) << probe;
  std::vector<int64_t> want;
  for (size_t level = 0; level < 2; ++level) {
    int64_t best = 0;
    double best_ms = 0;
    for (const char* m : {"1", "8", "16"}) {
      ASSERT_EQ(probe["latency_ms"][m].size(), 2u) << probe;
      const double t = probe["latency_ms"][m][level];
      EXPECT_GT(t, 0);
      if (best == 0 || t < best_ms) best = std::stoll(m), best_ms = t;
    }
    want.push_back(best);
    EXPECT_EQ(probe["round_to"][level].get<int64_t>(), best) << "level " << level;
  }
  std::vector<int64_t> got;
  for (const auto& c : rep["candidates"])
    if (c["stage"] == "prune") got.push_back(c["settings"]["round_to"].get<int64_t>());
  EXPECT_EQ(got, want);  // the chain's levels, in order
  // The pick is cached: a resumed run makes nothing and chooses the same.
  auto r = run_command(f.compress(out, " --resume"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(report_of(out)["probes"][0], probe);
  // auto is for structured methods, and only compress resolves it.
  std::ofstream(f.recipe) << "stages:\n  - prune: {method: global, amount: 0.5, round_to: auto}\n";
  r = run_command(f.compress(f.dir.file("bad")));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("'round_to': auto is for structured methods"), std::string::npos) << r.output;
}

// Structured levels chain on what was actually removed: channels rounded up to a multiple
// remove less than the level asked, and the next level asks for what is still missing
// (the MLP's 128 hidden units: 30% rounded up to 16 keeps 96, so 60% then removes
// 1 - 0.4 / 0.75 of them, not 1 - 0.4 / 0.7 as if 30% had been removed).
TEST(Compress, StructuredChainsAskForWhatIsStillMissing) {
  Fixture f;
  const nlohmann::json rep = f.run_recipe("chain", "target: latency\nmax_drop: 50\nvalidation_samples: 100\nstages:\n"
                                                 "  - prune: {method: ln-structured, amount: [0.3, 0.6], round_to: 16, finetune: 0}\n");
  ASSERT_FALSE(rep.is_null());
  std::vector<nlohmann::json> pruned;
  for (const auto& c : rep["candidates"])
    if (c["stage"] == "prune") pruned.push_back(c);
  ASSERT_EQ(pruned.size(), 2u);
  EXPECT_DOUBLE_EQ(pruned[0]["settings"]["amount"].get<double>(), 0.3);
  EXPECT_DOUBLE_EQ(pruned[0]["metrics"]["channels_removed"].get<double>(), 0.25);  // 96 of 128 kept
  EXPECT_DOUBLE_EQ(pruned[1]["settings"]["amount"].get<double>(), 0.466667);
  EXPECT_DOUBLE_EQ(pruned[1]["metrics"]["channels_removed"].get<double>(), 0.5);  // 51.2 kept, rounded up to 64
}
