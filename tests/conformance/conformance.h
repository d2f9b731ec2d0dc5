// Runs one case of ONNX's backend test data (model.onnx + test_data_set_*/*.pb)
// through import and the executor and compares with the stored outputs.
#pragma once
#include <set>
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

}  // namespace shrink::test_support
