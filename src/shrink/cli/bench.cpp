// shrink bench MODEL [--batch N] [--runs R] [--warmup W]: latency of shrink's executor.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "shrink/cli/commands.h"
#include "shrink/core/error.h"
#include "shrink/core/threads.h"
#include "shrink/exec/session.h"
#include "shrink/onnx/import.h"
#include "shrink/passes/pass.h"

namespace shrink::cli {

void add_bench_command(CLI::App& app) {
  struct Options {
    std::string model, passes = "inference";
    int64_t batch = 1;
    int runs = 50, warmup = 5;
    bool json = false;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("bench", "Median latency and throughput of shrink's executor on a model");
  cmd->add_option("model", opt->model, "ONNX model")->required();
  cmd->add_option("--batch", opt->batch, "batch size for a symbolic batch dimension")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--runs", opt->runs, "timed runs")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--warmup", opt->warmup, "untimed runs first")->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--passes", opt->passes, "pass pipeline applied before timing ('none' to run as imported)")->capture_default_str();
  cmd->add_flag("--json", opt->json, "print JSON");
  cmd->callback([opt] {
    ir::Graph g = onnx_io::import_model(opt->model);
    passes::make_pipeline(opt->passes).run(g);
    std::vector<at::Tensor> inputs;
    at::manual_seed(0);
    for (const ir::Value* in : g.inputs()) {
      SHRINK_CHECK(in->type.has_shape, "input '", in->name, "' has no shape to benchmark with");
      std::vector<int64_t> dims = in->type.dims;
      for (size_t i = 0; i < dims.size(); ++i) {
        if (dims[i] >= 0) continue;
        SHRINK_CHECK(i == 0, "input '", in->name, "': only the batch dimension may be symbolic, got ",
                     in->type.to_string());
        dims[i] = opt->batch;
      }
      at::TensorOptions o = at::TensorOptions().dtype(in->type.dtype);
      inputs.push_back(at::isFloatingType(in->type.dtype) ? at::randn(dims, o) : at::zeros(dims, o));
    }
    int64_t batch = inputs.empty() || inputs[0].dim() == 0 ? 1 : inputs[0].size(0);
    exec::Session session(g);
    for (int i = 0; i < opt->warmup; ++i) session.run(inputs);
    std::vector<double> ms;
    for (int i = 0; i < opt->runs; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      session.run(inputs);
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    double median = ms[ms.size() / 2], p90 = ms[std::min(ms.size() - 1, ms.size() * 9 / 10)];
    double throughput = batch / (median / 1000.0);
    nlohmann::json j = {{"model", opt->model}, {"batch", batch}, {"threads", current_threads()},
                        {"runs", opt->runs}, {"median_ms", median}, {"p90_ms", p90}, {"min_ms", ms.front()},
                        {"samples_per_s", throughput}};
    if (opt->json) {
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::cout << opt->model << ": batch " << batch << ", " << current_threads() << " threads, " << opt->runs
              << " runs: median " << median << " ms, p90 " << p90 << " ms, " << throughput << " samples/s\n";
  });
}

}  // namespace shrink::cli
