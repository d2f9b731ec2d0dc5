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

const ConformanceSummary& run_all() {
  static ConformanceSummary summary = [] {
    ConformanceSummary s = run_conformance_suites(onnx_testdata_dir());
    std::cout << s.report();
    return s;
  }();
  return summary;
}

}  // namespace

TEST(Conformance, OnnxBackendTestData) {
  ASSERT_TRUE(fs::exists(onnx_testdata_dir()))
      << "ONNX test data not found at " << onnx_testdata_dir()
      << " (install libonnx-testdata or set SHRINK_ONNX_TESTDATA)";
  const ConformanceSummary& s = run_all();
  EXPECT_EQ(s.failed, 0);
  EXPECT_GE(s.passed, 450);
}

// Every registered op is exercised by at least one passing conformance case.
TEST(Conformance, EveryRegisteredOpHasAPassingCase) {
  const ConformanceSummary& s = run_all();
  for (const std::string& op : shrink::ops::OpRegistry::instance().names())
    if (shrink::ops::OpRegistry::instance().find(op)->domain.empty())  // ai.shrink ops: tests/quantize
      EXPECT_TRUE(s.ops_passed.count(op)) << "no passing conformance case uses " << op;
}
