// shrink info MODEL: what a model is made of.
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "shrink/cli/commands.h"
#include "shrink/onnx/import.h"

namespace shrink::cli {

void add_info_command(CLI::App& app) {
  struct Options {
    std::string model;
    bool json = false;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("info", "Summarise a model: inputs, outputs, ops, parameters");
  cmd->add_option("model", opt->model, "ONNX model")->required();
  cmd->add_flag("--json", opt->json, "print JSON");
  cmd->callback([opt] {
    ir::Graph g = onnx_io::import_model(opt->model);
    std::map<std::string, int> ops;
    for (const auto& n : g.nodes()) ops[n->op_type]++;
    int64_t params = 0, nonzeros = 0, buffers = 0, constants = 0;
    for (const auto& [name, init] : g.initializers()) {
      int64_t n = init.tensor.numel();
      if (init.kind == ir::InitKind::Parameter) {
        params += n;
        nonzeros += init.tensor.ne(0).sum().item<int64_t>();
      } else if (init.kind == ir::InitKind::Buffer) {
        buffers += n;
      } else {
        constants += n;
      }
    }
    nlohmann::json j = {{"model", opt->model}, {"graph", g.name}, {"opset", g.opset},
                        {"nodes", g.nodes().size()}, {"parameters", params},
                        {"nonzero_parameters", nonzeros}, {"buffer_elements", buffers},
                        {"constant_elements", constants}, {"ops", ops}};
    for (const auto* v : g.inputs()) j["inputs"].push_back({{"name", v->name}, {"type", v->type.to_string()}});
    for (const auto* v : g.outputs()) j["outputs"].push_back({{"name", v->name}, {"type", v->type.to_string()}});
    if (opt->json) {
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::cout << opt->model << ": graph '" << g.name << "', opset " << g.opset << ", "
              << g.nodes().size() << " nodes\n";
    for (const auto* v : g.inputs()) std::cout << "  input  " << v->name << ": " << v->type.to_string() << "\n";
    for (const auto* v : g.outputs()) std::cout << "  output " << v->name << ": " << v->type.to_string() << "\n";
    std::cout << "  parameters " << params << " (" << nonzeros << " non-zero), buffers " << buffers
              << ", constants " << constants << "\n  ops:";
    for (const auto& [op, count] : ops) std::cout << " " << op << " x" << count;
    std::cout << "\n";
  });
}

}  // namespace shrink::cli
