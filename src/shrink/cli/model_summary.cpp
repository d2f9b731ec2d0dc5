#include "shrink/cli/model_summary.h"

#include <algorithm>
#include <filesystem>

#include "shrink/core/threads.h"
#include "shrink/onnx/import.h"
#include "shrink/passes/pass.h"

namespace shrink::cli {

report::Latency deployed_latency(const std::string& path) {
  ir::Graph g = onnx_io::import_model(path);
  passes::make_pipeline("inference").run(g);
  return report::measure_latency(g, 64, 30, 3);
}

Snapshot snapshot_of(const ir::Graph& g, const std::string& path, bool latency) {
  Snapshot s;
  s.stats = report::model_stats(g);
  s.file_bytes = static_cast<int64_t>(std::filesystem::file_size(path));
  s.timed = latency;
  if (latency) s.latency = deployed_latency(path);
  return s;
}

nlohmann::json snapshot_json(const Snapshot& s) {
  nlohmann::json j = {{"parameters", s.stats.parameters}, {"nonzeros", s.stats.nonzeros},
                      {"bytes_on_disk", s.file_bytes}, {"macs", s.stats.macs}};
  if (s.accuracy >= 0) j["test_accuracy"] = s.accuracy;
  if (s.timed) j["latency_ms_batch64"] = s.latency.median_ms;
  return j;
}

void print_before_after(const Snapshot& before, const Snapshot& after) {
  auto row = [](const char* what, double a, double b, const char* fmt) {
    std::printf("%-16s ", what);
    std::printf(fmt, a);
    std::printf(" -> ");
    std::printf(fmt, b);
    std::printf("\n");
  };
  std::printf("\n");
  row("parameters", before.stats.parameters, after.stats.parameters, "%.0f");
  row("non-zeros", before.stats.nonzeros, after.stats.nonzeros, "%.0f");
  std::printf("%-16s %.2fx fewer\n", "", static_cast<double>(before.stats.nonzeros) / std::max<int64_t>(1, after.stats.nonzeros));
  row("bytes on disk", before.file_bytes, after.file_bytes, "%.0f");
  row("MACs/sample", before.stats.macs, after.stats.macs, "%.0f");
  if (before.timed && after.timed) {
    row("latency ms", before.latency.median_ms, after.latency.median_ms, "%.3f");
    std::printf("%-16s (median, batch 64, %d threads, after the inference passes)\n", "", current_threads());
  }
  if (before.accuracy >= 0 && after.accuracy >= 0) row("test accuracy %", 100 * before.accuracy, 100 * after.accuracy, "%.2f");
}

}  // namespace shrink::cli
