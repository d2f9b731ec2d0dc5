// shrink_conformance [DATA_DIR]: runs ONNX's backend test data and prints
// "N passed, M failed, K skipped" with the reasons cases were skipped.
#include <iostream>

#include "conformance/conformance.h"
#include "support/paths.h"

int main(int argc, char** argv) {
  std::string dir = argc > 1 ? argv[1] : shrink::test_support::onnx_testdata_dir();
  shrink::test_support::ConformanceSummary s = shrink::test_support::run_conformance_suites(dir);
  std::cout << s.report();
  return s.failed == 0 && s.passed > 0 ? 0 : 1;
}
