#include "conformance/conformance.h"

#include <ATen/ATen.h>
#include <onnx/onnx_pb.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <algorithm>

#include "shrink/core/error.h"
#include "shrink/exec/session.h"
#include "shrink/onnx/import.h"
#include "shrink/onnx/tensor_proto.h"
#include "shrink/ops/registry.h"

namespace fs = std::filesystem;

namespace shrink::test_support {
namespace {

// Cases whose expected outputs come from a random draw the test data does not record.
bool nondeterministic(const std::string& name) {
  return name.find("test_training_dropout") != std::string::npos &&
         name.find("zero_ratio") == std::string::npos;
}

// Cases whose stored outputs are themselves imprecise: the *window_expanded outputs
// were computed by a different float32 formula and sit up to 7e-5 from the exact
// window (ours are within 2e-7 of it), so they are compared at atol 1e-4.
double atol_for(const std::string& name, double atol) {
  return name.find("window") != std::string::npos && name.find("_expanded") != std::string::npos
             ? 1e-4 : atol;
}

std::vector<at::Tensor> read_tensors(const fs::path& dir, const std::string& prefix) {
  std::vector<at::Tensor> out;
  for (int i = 0;; ++i) {
    fs::path p = dir / (prefix + std::to_string(i) + ".pb");
    if (!fs::exists(p)) break;
    out.push_back(onnx_io::read_tensor_file(p.string()));
  }
  return out;
}

std::string compare(const at::Tensor& got, const at::Tensor& want, double rtol, double atol) {
  if (got.scalar_type() != want.scalar_type())
    return msg("dtype ", c10::toString(got.scalar_type()), " != expected ", c10::toString(want.scalar_type()));
  if (got.sizes() != want.sizes())
    return msg("shape ", got.sizes(), " != expected ", want.sizes());
  if (got.numel() == 0) return "";
  if (!got.is_floating_point())
    return at::equal(got, want) ? "" : "integer/bool values differ";
  at::Tensor g = got.to(at::kDouble), w = want.to(at::kDouble);
  at::Tensor both_nan = at::isnan(g) & at::isnan(w);
  at::Tensor same_inf = at::isinf(w) & (g == w);
  at::Tensor close = (g - w).abs() <= atol + rtol * w.abs();
  at::Tensor ok = close | both_nan | same_inf;
  if (ok.all().item<bool>()) return "";
  at::Tensor err = at::where(ok, at::zeros_like(g), (g - w).abs());
  return msg("max abs error ", err.max().item<double>());
}

}  // namespace

CaseResult run_conformance_case(const std::string& dir, double rtol, double atol) {
  CaseResult result{CaseStatus::Skipped, "", {}};
  fs::path root(dir);
  std::string name = root.filename().string();
  onnx::ModelProto model;
  {
    std::ifstream in(root / "model.onnx", std::ios::binary);
    if (!in || !model.ParseFromIstream(&in)) return {CaseStatus::Failed, "cannot parse model.onnx", {}};
  }
  std::vector<std::string> unsupported;
  for (const auto& node : model.graph().node()) {
    result.ops.insert(node.op_type());
    bool known = (node.domain().empty() || node.domain() == "ai.onnx") &&
                 ops::OpRegistry::instance().find(node.op_type());
    if (!known) unsupported.push_back(node.op_type());
  }
  if (!unsupported.empty()) {
    result.reason = "op " + unsupported.front();
    return result;
  }
  if (nondeterministic(name)) {
    result.reason = "random output";
    return result;
  }
  ir::Graph graph;
  try {
    graph = onnx_io::import_model((root / "model.onnx").string());
  } catch (const Error& e) {
    std::string what = e.what();
    std::string prefix = (root / "model.onnx").string() + ": ";
    if (what.rfind(prefix, 0) == 0) what = what.substr(prefix.size());
    bool unsupported_feature = what.find("not supported") != std::string::npos;
    result.status = unsupported_feature ? CaseStatus::Skipped : CaseStatus::Failed;
    result.reason = what;
    return result;
  }
  bool ran = false;
  for (const auto& entry : fs::directory_iterator(root)) {
    if (!entry.is_directory() || entry.path().filename().string().rfind("test_data_set", 0) != 0) continue;
    std::vector<at::Tensor> inputs, expected;
    try {
      inputs = read_tensors(entry.path(), "input_");
      expected = read_tensors(entry.path(), "output_");
    } catch (const Error& e) {
      std::string what = e.what();
      return {CaseStatus::Skipped, "data: " + what.substr(what.find(": ") + 2), result.ops};
    }
    try {
      exec::Session session(graph);
      std::vector<at::Tensor> outputs = session.run(inputs);
      if (outputs.size() < expected.size())
        return {CaseStatus::Failed, msg(outputs.size(), " outputs, expected ", expected.size()), result.ops};
      for (size_t i = 0; i < expected.size(); ++i) {
        std::string diff = compare(outputs[i], expected[i], rtol, atol_for(name, atol));
        if (!diff.empty())
          return {CaseStatus::Failed, msg("output ", i, ": ", diff), result.ops};
      }
    } catch (const std::exception& e) {
      std::string what = e.what();
      return {CaseStatus::Failed, what.substr(0, what.find('\n')), result.ops};
    }
    ran = true;
  }
  if (!ran) return {CaseStatus::Skipped, "no test data", result.ops};
  result.status = CaseStatus::Passed;
  return result;
}

ConformanceSummary run_conformance_suites(const std::string& data_dir) {
  ConformanceSummary s;
  for (const char* suite : {"node", "pytorch-converted", "pytorch-operator", "simple"}) {
    fs::path dir = fs::path(data_dir) / suite;
    if (!fs::exists(dir)) continue;
    std::vector<fs::path> cases;
    for (const auto& e : fs::directory_iterator(dir)) cases.push_back(e.path());
    std::sort(cases.begin(), cases.end());
    for (const fs::path& c : cases) {
      CaseResult r = run_conformance_case(c.string());
      auto& counts = s.per_suite[suite];
      counts.resize(3);
      counts[static_cast<int>(r.status)]++;
      if (r.status == CaseStatus::Passed) {
        ++s.passed;
        s.ops_passed.insert(r.ops.begin(), r.ops.end());
      } else if (r.status == CaseStatus::Failed) {
        ++s.failed;
        s.failures.push_back(std::string(suite) + "/" + c.filename().string() + ": " + r.reason);
      } else {
        ++s.skipped;
        s.skipped_for[r.reason.substr(0, r.reason.find(" (expected"))]++;
      }
    }
  }
  return s;
}

std::string ConformanceSummary::report() const {
  std::ostringstream out;
  for (const auto& f : failures) out << "FAILED " << f << "\n";
  out << "skipped cases by reason:";
  for (const auto& [why, n] : skipped_for) out << "\n  " << why << ": " << n;
  for (const auto& [suite, c] : per_suite)
    out << "\n" << suite << ": " << c[0] << " passed, " << c[1] << " failed, " << c[2] << " skipped";
  out << "\nONNX conformance: " << passed << " passed, " << failed << " failed, " << skipped << " skipped\n";
  return out.str();
}

}  // namespace shrink::test_support
