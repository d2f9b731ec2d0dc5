// shrink info MODEL: per-layer table and totals.
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "shrink/cli/commands.h"
#include "shrink/core/atomic_file.h"
#include "shrink/onnx/encode.h"
#include "shrink/onnx/external_data.h"
#include "shrink/onnx/import.h"
#include "shrink/passes/pass.h"
#include "shrink/report/model_stats.h"

namespace shrink::cli {

void add_info_command(CLI::App& app) {
  struct Options {
    std::string model, passes = "none";
    bool json = false;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("info", "Per-layer table (op, output shape, parameters, non-zeros, bytes, MACs) and totals");
  cmd->add_option("model", opt->model, "ONNX model")->required();
  cmd->add_option("--passes", opt->passes,
                  "pass pipeline applied first: 'none' (the file as it is), 'inference' (what shrink runs: "
                  "folded, fused, QDQ lowered to int8 kernels) or a comma-separated list")
      ->capture_default_str();
  cmd->add_flag("--json", opt->json, "print JSON");
  cmd->callback([opt] {
    ir::Graph g = onnx_io::import_model(opt->model);
    passes::make_pipeline(opt->passes).run(g);
    report::ModelStats s = report::model_stats(g);
    int64_t file_bytes = onnx_io::model_bytes_on_disk(opt->model);
    std::map<std::string, int> ops;
    for (const auto& n : g.nodes()) ops[n->op_type]++;
    nlohmann::json j = {{"model", opt->model}, {"graph", g.name}, {"opset", g.opset},
                        {"nodes", g.nodes().size()}, {"parameters", s.parameters},
                        {"nonzero_parameters", s.nonzeros}, {"initializer_bytes", s.initializer_bytes},
                        {"file_bytes", file_bytes}, {"macs_per_sample", s.macs}, {"ops", ops},
                        {"metadata", g.metadata}};
    for (const auto* v : g.inputs()) j["inputs"].push_back({{"name", v->name}, {"type", v->type.to_string()}});
    for (const auto* v : g.outputs()) j["outputs"].push_back({{"name", v->name}, {"type", v->type.to_string()}});
    // How the file stores each tensor (Deep Compression's table, Han et al. 2016).
    const std::string bytes = read_file(opt->model);
    std::vector<onnx_io::StoredTensor> stored = onnx_io::stored_tensors(bytes, opt->model);
    int64_t dense_total = 0, stored_total = 0, weights_total = 0, nonzeros_total = 0;
    for (auto& t : stored) {
      if (const ir::Initializer* init = g.initializer(t.name); init && opt->passes == "none")
        t.nonzeros = init->tensor.ne(0).sum().item<int64_t>();
      dense_total += t.elements * t.element_bits / 8;
      stored_total += t.bytes;
      weights_total += t.elements;
      nonzeros_total += std::max<int64_t>(0, t.nonzeros);
      j["storage"].push_back({{"name", t.name}, {"form", t.form}, {"elements", t.elements},
                              {"nonzeros", t.nonzeros}, {"element_bits", t.element_bits},
                              {"bits_per_weight", t.bits_per_weight}, {"bits_per_index", t.bits_per_index},
                              {"bytes", t.bytes}, {"dense_bytes", t.elements * t.element_bits / 8}});
    }
    j["storage_totals"] = {{"elements", weights_total}, {"nonzeros", nonzeros_total}, {"dense_bytes", dense_total},
                           {"bytes", stored_total},
                           {"rate", stored_total ? static_cast<double>(dense_total) / stored_total : 0.0}};
    for (const auto& l : s.layers)
      j["layers"].push_back({{"name", l.name}, {"op", l.op}, {"output", l.output}, {"parameters", l.parameters},
                             {"nonzeros", l.nonzeros}, {"bytes", l.bytes}, {"macs", l.macs}});
    if (opt->json) {
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::cout << opt->model << ": graph '" << g.name << "', opset " << g.opset << ", " << g.nodes().size()
              << " nodes\n";
    for (const auto* v : g.inputs()) std::cout << "  input  " << v->name << ": " << v->type.to_string() << "\n";
    for (const auto* v : g.outputs()) std::cout << "  output " << v->name << ": " << v->type.to_string() << "\n";
    for (const auto& [k, v] : g.metadata) std::cout << "  metadata " << k << " = " << v << "\n";
    size_t wname = 4, wop = 2, wout = 6;
    for (const auto& l : s.layers) {
      wname = std::max(wname, l.name.size());
      wop = std::max(wop, l.op.size());
      wout = std::max(wout, l.output.size());
    }
    wname = std::min<size_t>(wname, 40);
    std::cout << std::left << std::setw(wname) << "name" << "  " << std::setw(wop) << "op" << "  "
              << std::setw(wout) << "output" << std::right << std::setw(12) << "params" << std::setw(12)
              << "nonzeros" << std::setw(12) << "bytes" << std::setw(14) << "MACs" << "\n";
    for (const auto& l : s.layers)
      std::cout << std::left << std::setw(wname) << l.name.substr(0, wname) << "  " << std::setw(wop) << l.op
                << "  " << std::setw(wout) << l.output << std::right << std::setw(12) << l.parameters
                << std::setw(12) << l.nonzeros << std::setw(12) << l.bytes << std::setw(14) << l.macs << "\n";
    size_t wt = 11;
    for (const auto& t : stored) wt = std::max(wt, t.name.size());
    wname = std::min<size_t>(wt, 40);
    std::printf("\nstorage (tensors of 64 or more elements; rate: dense bytes / stored bytes)\n");
    std::printf("%-*s %10s %8s  %-16s %9s %9s %10s %8s\n", static_cast<int>(wname), "tensor", "weights", "density",
                "form", "bits/w", "bits/idx", "bytes", "rate");
    for (const auto& t : stored) {
      if (t.elements < 64) continue;
      double density = t.nonzeros >= 0 && t.elements ? 100.0 * t.nonzeros / t.elements : 100.0;
      int64_t dense = t.elements * t.element_bits / 8;
      std::printf("%-*s %10lld %7.1f%%  %-16s %9.2f %9.2f %10lld %7.1fx\n", static_cast<int>(wname),
                  t.name.substr(0, wname).c_str(), static_cast<long long>(t.elements), density, t.form.c_str(),
                  t.bits_per_weight, t.bits_per_index, static_cast<long long>(t.bytes),
                  t.bytes ? static_cast<double>(dense) / t.bytes : 0.0);
    }
    std::printf("%-*s %10lld %7.1f%%  %-16s %9s %9s %10lld %7.1fx\n\n", static_cast<int>(wname), "all tensors",
                static_cast<long long>(weights_total), weights_total ? 100.0 * nonzeros_total / weights_total : 0.0, "",
                "", "", static_cast<long long>(stored_total),
                stored_total ? static_cast<double>(dense_total) / stored_total : 0.0);
    std::cout << "total: " << s.parameters << " parameters, " << s.nonzeros << " non-zero, " << s.initializer_bytes
              << " bytes of initializers, " << file_bytes << " bytes on disk, " << s.macs << " MACs per sample\n";
  });
}

}  // namespace shrink::cli
