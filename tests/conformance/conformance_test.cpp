// ONNX's own backend test data, every case whose ops are registered.
#include <gtest/gtest.h>

#include <filesystem>
#include <iostream>
#include <map>

#include "conformance/conformance.h"
#include "shrink/ops/registry.h"
#include "support/paths.h"

namespace fs = std::filesystem;
using namespace shrink::test_support;

namespace {

struct Summary {
  int passed = 0, failed = 0, skipped = 0;
  std::map<std::string, int> skipped_for;
  std::vector<std::string> failures;
  std::set<std::string> ops_passed;
};

const Summary& run_all() {
  static Summary summary = [] {
    Summary s;
    for (const char* suite : {"node", "pytorch-converted", "pytorch-operator", "simple"}) {
      fs::path dir = fs::path(onnx_testdata_dir()) / suite;
      if (!fs::exists(dir)) continue;
      std::vector<fs::path> cases;
      for (const auto& e : fs::directory_iterator(dir)) cases.push_back(e.path());
      std::sort(cases.begin(), cases.end());
      for (const fs::path& c : cases) {
        CaseResult r = run_conformance_case(c.string());
        std::string id = std::string(suite) + "/" + c.filename().string();
        if (r.status == CaseStatus::Passed) {
          ++s.passed;
          s.ops_passed.insert(r.ops.begin(), r.ops.end());
        } else if (r.status == CaseStatus::Failed) {
          ++s.failed;
          s.failures.push_back(id + ": " + r.reason);
        } else {
          ++s.skipped;
          s.skipped_for[r.reason.substr(0, 60)]++;
        }
      }
    }
    std::cout << "conformance: " << s.passed << " passed, " << s.failed << " failed, " << s.skipped
              << " skipped\n";
    std::cout << "skipped for:";
    for (const auto& [why, n] : s.skipped_for) std::cout << " [" << why << "] x" << n << ";";
    std::cout << "\n";
    for (const auto& f : s.failures) std::cout << "FAILED " << f << "\n";
    return s;
  }();
  return summary;
}

}  // namespace

TEST(Conformance, OnnxBackendTestData) {
  ASSERT_TRUE(fs::exists(onnx_testdata_dir()))
      << "ONNX test data not found at " << onnx_testdata_dir()
      << " (install libonnx-testdata or set SHRINK_ONNX_TESTDATA)";
  const Summary& s = run_all();
  EXPECT_EQ(s.failed, 0);
  EXPECT_GE(s.passed, 450);
}

// Every registered op is exercised by at least one passing conformance case.
TEST(Conformance, EveryRegisteredOpHasAPassingCase) {
  const Summary& s = run_all();
  for (const std::string& op : shrink::ops::OpRegistry::instance().names())
    EXPECT_TRUE(s.ops_passed.count(op)) << "no passing conformance case uses " << op;
}
