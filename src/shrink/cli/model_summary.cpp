#include "shrink/cli/model_summary.h"

#include "shrink/train/trainer.h"

#include <algorithm>
#include <filesystem>

#include "shrink/core/threads.h"
#include "shrink/onnx/external_data.h"
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
  s.file_bytes = onnx_io::model_bytes_on_disk(path);
  s.timed = latency;
  if (latency) s.latency = deployed_latency(path);
  return s;
}

void measure_before(Snapshot& before, const ir::Graph& original, const data::Dataset& test) {
  if (!test.labeled()) return;
  train::EvalResult r = train::evaluate(original, test);
  before.accuracy = r.accuracy;
  before.top5_accuracy = r.top5_accuracy;
}

void measure_after(Snapshot& after, const ir::Graph& result, const ir::Graph& original, const data::Dataset& test) {
  if (test.labeled()) {
    train::EvalResult r = train::evaluate(result, test);
    after.accuracy = r.accuracy;
    after.top5_accuracy = r.top5_accuracy;
    return;
  }
  train::Agreement a = train::compare(result, original, test);
  after.agreement = a.agreement;
  after.kl = a.kl;
  after.snr_db = a.snr_db;
}

nlohmann::json snapshot_json(const Snapshot& s) {
  nlohmann::json j = {{"parameters", s.stats.parameters}, {"nonzeros", s.stats.nonzeros},
                      {"bytes_on_disk", s.file_bytes}, {"macs", s.stats.macs}};
  if (s.accuracy >= 0) j["test_accuracy"] = s.accuracy;
  if (s.top5_accuracy >= 0) j["test_top5_accuracy"] = s.top5_accuracy;
  if (s.agreement >= 0) j["agreement"] = {{"top1", s.agreement}, {"kl", s.kl}, {"snr_db", s.snr_db}};
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
  if (before.top5_accuracy >= 0 && after.top5_accuracy >= 0)
    row("top-5 accuracy %", 100 * before.top5_accuracy, 100 * after.top5_accuracy, "%.2f");
  if (after.agreement >= 0)
    std::printf("%-16s top-1 agreement with the original %.2f%%, mean KL %.5f, SNR %.1f dB (%s)\n", "agreement",
                100 * after.agreement, after.kl, after.snr_db, "the data has no labels");
}

}  // namespace shrink::cli
