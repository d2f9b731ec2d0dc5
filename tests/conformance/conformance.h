// Runs one case of ONNX's backend test data (model.onnx + test_data_set_*/*.pb)
// through import and the executor and compares with the stored outputs.
#pragma once
#include <map>
#include <set>
#include <vector>
#include <string>

namespace shrink::test_support {

enum class CaseStatus { Passed, Failed, Skipped };

struct CaseResult {
  CaseStatus status;
  std::string reason;          // why it failed or was skipped
  std::set<std::string> ops;   // operators the model uses
};

// fp32 tolerance from the issue: |got - want| <= atol + rtol * |want|.
CaseResult run_conformance_case(const std::string& dir, double rtol = 1e-4, double atol = 1e-5);

struct ConformanceSummary {
  int passed = 0, failed = 0, skipped = 0;
  std::map<std::string, std::vector<int>> per_suite;  // suite -> {passed, failed, skipped}
  std::map<std::string, int> skipped_for;  // reason (an unsupported op, a type, ...) -> cases
  std::vector<std::string> failures;       // "suite/case: reason"
  std::set<std::string> ops_passed;        // ops used by at least one passing case
  std::string report() const;              // "N passed, M failed, K skipped" and the reasons
};

// The suites the issue names: node, pytorch-converted, pytorch-operator, simple.
ConformanceSummary run_conformance_suites(const std::string& data_dir);

}  // namespace shrink::test_support
