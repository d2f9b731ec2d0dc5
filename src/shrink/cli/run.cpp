// shrink run MODEL --input x.npy [--input ...] --output y.npy [--output ...]
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "shrink/cli/commands.h"
#include "shrink/core/error.h"
#include "shrink/exec/session.h"
#include "shrink/core/atomic_file.h"
#include "shrink/io/npy.h"
#include "shrink/onnx/import.h"

namespace shrink::cli {

void add_run_command(CLI::App& app) {
  struct Options {
    std::string model;
    std::vector<std::string> inputs, outputs;
    bool json = false;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("run", "Run a model on .npy tensors and write its outputs as .npy");
  cmd->add_option("model", opt->model, "ONNX model")->required();
  cmd->add_option("-i,--input", opt->inputs, "input tensor (.npy), one per graph input, in order")->required();
  cmd->add_option("-o,--output", opt->outputs, "where to write each graph output (.npy), in order")->required();
  cmd->add_flag("--json", opt->json, "print a JSON summary");
  cmd->callback([opt] {
    ir::Graph graph = onnx_io::import_model(opt->model);
    SHRINK_CHECK(opt->inputs.size() == graph.inputs().size(), "--input: model '", opt->model,
                 "' takes ", graph.inputs().size(), " inputs, got ", opt->inputs.size());
    SHRINK_CHECK(opt->outputs.size() <= graph.outputs().size(), "--output: model '", opt->model,
                 "' has ", graph.outputs().size(), " outputs, got ", opt->outputs.size(), " paths");
    std::vector<at::Tensor> inputs;
    for (const std::string& path : opt->inputs) inputs.push_back(io::read_npy(path));
    // Every output file is created (as a temporary) before the run and renamed into
    // place only when all of them are written: all or nothing.
    AtomicFileSet files;
    std::vector<AtomicFile*> outs;
    for (const std::string& path : opt->outputs) outs.push_back(&files.add(path));
    exec::Session session(graph);
    auto start = std::chrono::steady_clock::now();
    std::vector<at::Tensor> outputs;
    try {
      outputs = session.run(inputs);
    } catch (const Error& e) {
      fail(opt->model, ": ", e.what());
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    nlohmann::json report = {{"model", opt->model}, {"seconds", seconds}, {"outputs", nlohmann::json::array()}};
    std::vector<std::string> lines;
    for (size_t i = 0; i < opt->outputs.size(); ++i) {
      io::write_npy(*outs[i], outputs[i]);
      std::string type = ir::TensorType::of(outputs[i].scalar_type(), outputs[i].sizes().vec()).to_string();
      report["outputs"].push_back({{"name", graph.outputs()[i]->name}, {"file", opt->outputs[i]}, {"type", type}});
      lines.push_back("wrote " + opt->outputs[i] + " (" + graph.outputs()[i]->name + ": " + type + ")");
    }
    files.commit();
    if (!opt->json)
      for (const std::string& line : lines) std::cout << line << "\n";
    if (opt->json) std::cout << report.dump(2) << "\n";
    else std::cout << "ran in " << seconds * 1e3 << " ms\n";
  });
}

}  // namespace shrink::cli
