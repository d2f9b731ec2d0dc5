// shrink bench MODEL [--batch N] [--runs R] [--warmup W]: latency of shrink's executor.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "shrink/cli/commands.h"
#include "shrink/cli/validators.h"
#include "shrink/core/error.h"
#include "shrink/core/threads.h"
#include "shrink/exec/session.h"
#include "shrink/onnx/import.h"
#include "shrink/passes/pass.h"
#include "shrink/report/latency.h"

namespace shrink::cli {

void add_bench_command(CLI::App& app) {
  struct Options {
    std::string model, passes = "inference";
    int64_t batch = 1;
    int runs = 50, warmup = 5;
    bool json = false, profile = false;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("bench", "Median latency and throughput of shrink's executor on a model");
  cmd->add_option("model", opt->model, "ONNX model")->required();
  cmd->add_option("--batch", opt->batch, "batch size for a symbolic batch dimension")->check(positive())->capture_default_str();
  cmd->add_option("--runs", opt->runs, "timed runs")->check(positive())->capture_default_str();
  cmd->add_option("--warmup", opt->warmup, "untimed runs first")->check(non_negative())->capture_default_str();
  cmd->add_option("--passes", opt->passes, "pass pipeline applied before timing ('none' to run as imported)")->capture_default_str();
  cmd->add_flag("--profile", opt->profile, "also time every node: time per op type and the slowest nodes");
  cmd->add_flag("--json", opt->json, "print JSON");
  cmd->callback([opt] {
    ir::Graph g = onnx_io::import_model(opt->model);
    passes::make_pipeline(opt->passes).run(g);
    report::Latency l = report::measure_latency(g, opt->batch, opt->runs, opt->warmup, opt->profile);
    int64_t batch = l.batch;
    double median = l.median_ms, p90 = l.p90_ms, throughput = l.samples_per_s();
    nlohmann::json j = {{"model", opt->model}, {"batch", batch}, {"threads", current_threads()},
                        {"runs", opt->runs}, {"median_ms", median}, {"p90_ms", p90}, {"min_ms", l.min_ms},
                        {"samples_per_s", throughput}};
    std::map<std::string, double> per_op;
    double profiled = 0;
    for (const auto& n : l.profile) {
      per_op[n.op] += n.ms;
      profiled += n.ms;
      j["profile"].push_back({{"node", n.node}, {"op", n.op}, {"ms", n.ms}});
    }
    if (opt->json) {
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::cout << opt->model << ": batch " << batch << ", " << current_threads() << " threads, " << opt->runs
              << " runs: median " << median << " ms, p90 " << p90 << " ms, " << throughput << " samples/s\n";
    if (!opt->profile) return;
    std::vector<std::pair<double, std::string>> ops;
    for (const auto& [op, ms] : per_op) ops.push_back({ms, op});
    std::sort(ops.rbegin(), ops.rend());
    std::printf("\n%-20s %10s %7s\n", "op", "ms/run", "share");
    for (const auto& [ms, op] : ops) std::printf("%-20s %10.3f %6.1f%%\n", op.c_str(), ms, 100 * ms / profiled);
    std::vector<report::NodeTime> nodes = l.profile;
    std::sort(nodes.begin(), nodes.end(), [](const auto& a, const auto& b) { return a.ms > b.ms; });
    std::printf("\n%-32s %-16s %10s\n", "slowest nodes", "op", "ms/run");
    for (size_t i = 0; i < std::min<size_t>(10, nodes.size()); ++i)
      std::printf("%-32s %-16s %10.3f\n", nodes[i].node.c_str(), nodes[i].op.c_str(), nodes[i].ms);
  });
}

}  // namespace shrink::cli
