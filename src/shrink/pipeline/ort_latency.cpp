#include "shrink/pipeline/ort_latency.h"

#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "shrink/core/error.h"

namespace fs = std::filesystem;

namespace shrink::pipeline {
namespace {

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string exe_dir() {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : p.parent_path().string();
}

bool has_node() { return std::system("command -v node >/dev/null 2>&1") == 0; }

std::string& reason() {
  static std::string r;
  return r;
}

}  // namespace

std::string find_ort_script() {
  std::vector<fs::path> tries;
  if (const char* env = std::getenv("SHRINK_ORT_RUN"); env && *env) tries.emplace_back(env);
  const std::string dir = exe_dir();
  if (!dir.empty()) {
    tries.push_back(fs::path(dir) / ".." / "tools" / "ort_run.js");
    tries.push_back(fs::path(dir) / ".." / "share" / "shrink" / "ort_run.js");
  }
  if (!has_node()) {
    reason() = "no node on PATH";
    return "";
  }
  for (const auto& p : tries) {
    std::error_code ec;
    if (!fs::is_regular_file(p, ec)) continue;
    if (!fs::is_directory(p.parent_path() / "node_modules" / "onnxruntime-node", ec)) {
      reason() = p.string() + " has no node_modules/onnxruntime-node beside it (scripts/setup.sh installs it)";
      continue;
    }
    return fs::weakly_canonical(p, ec).string();
  }
  if (reason().empty()) reason() = "no ort_run.js found (set SHRINK_ORT_RUN to tools/ort_run.js of a shrink checkout)";
  return "";
}

std::string ort_missing_reason() { return reason().empty() ? "not looked for" : reason(); }

OrtLatency ort_latency(const std::string& script, const std::string& model, int64_t batch, int runs) {
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  const std::string cmd = "node " + quote(script) + " bench " + quote(model) + " " + std::to_string(batch) + " " +
                          std::to_string(threads) + " " + std::to_string(runs) + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  SHRINK_CHECK(pipe, model, ": cannot start ONNX Runtime (node ", script, ")");
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  const int status = pclose(pipe);
  std::string last = out;
  while (!last.empty() && (last.back() == '\n' || last.back() == '\r')) last.pop_back();
  if (size_t nl = last.rfind('\n'); nl != std::string::npos) last = last.substr(nl + 1);
  SHRINK_CHECK(status == 0, model, ": ONNX Runtime failed: ", last.substr(0, 300));
  try {
    nlohmann::json j = nlohmann::json::parse(last);
    return {j.at("median_ms").get<double>(), j.at("min_ms").get<double>(), j.at("create_ms").get<double>()};
  } catch (const std::exception&) {
    fail(model, ": ONNX Runtime's timing is not JSON: ", last.substr(0, 200));
  }
}

}  // namespace shrink::pipeline
