// shrink convert IN -o OUT [--passes inference]: import, run a pass pipeline, export.
#include <iostream>
#include <nlohmann/json.hpp>

#include "shrink/cli/commands.h"
#include "shrink/cli/output_flags.h"
#include "shrink/core/error.h"
#include "shrink/onnx/export.h"
#include "shrink/onnx/import.h"
#include "shrink/passes/pass.h"

namespace shrink::cli {

void add_convert_command(CLI::App& app) {
  struct Options {
    std::string input, output, passes = "inference";
    bool json = false, dense = false, external_data = false;
    onnx_io::Storage storage = onnx_io::Storage::Compact;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("convert", "Import an ONNX model, run a pass pipeline, export it");
  cmd->add_option("model", opt->input, "ONNX model")->required();
  cmd->add_option("-o,--output", opt->output, "where to write the converted model")->required();
  cmd->add_option("--passes", opt->passes,
                  "'inference' (fold constants, drop Identity/Dropout, fold BatchNorm, MatMul+Add -> Gemm, "
                  "dead code), 'none', or a comma-separated list of passes")
      ->capture_default_str();
  add_storage_flag(cmd, &opt->storage);
  cmd->add_flag("--dense", opt->dense, "write every initializer dense (the same as --storage dense)")
      ->excludes(cmd->get_option("--storage"));
  cmd->add_flag("--external-data", opt->external_data,
                "write the tensors of 1 KiB or more to OUT.data beside the model (ONNX external data; "
                "models over protobuf's 2 GiB limit are written so always)");
  cmd->add_flag("--json", opt->json, "print a JSON summary");
  cmd->callback([opt] {
    ir::Graph g = onnx_io::import_model(opt->input);
    size_t before = g.nodes().size();
    passes::Pipeline pipeline;
    try {
      pipeline = passes::make_pipeline(opt->passes == "inference" ? "portable" : opt->passes);  // int8 kernels do not export
    } catch (const Error& e) {
      fail("--passes: ", e.what());
    }
    std::vector<passes::StageResult> stages = pipeline.run(g);
    onnx_io::ExportOptions eo = onnx_io::stored_as(opt->dense ? onnx_io::Storage::Dense : opt->storage);
    if (opt->external_data) eo.external_data = onnx_io::ExportOptions::ExternalData::Always;
    onnx_io::export_model(g, opt->output, eo);
    nlohmann::json j = {{"input", opt->input}, {"output", opt->output}, {"nodes_before", before},
                        {"nodes_after", g.nodes().size()}, {"opset", onnx_io::export_opset(g)}};
    for (const auto& s : stages) j["stages"].push_back({{"pass", s.pass}, {"changed", s.changed}, {"nodes", s.nodes_after}});
    if (opt->json) {
      std::cout << j.dump(2) << "\n";
      return;
    }
    for (const auto& s : stages)
      std::cout << "  " << s.pass << (s.changed ? ": changed, " : ": unchanged, ") << s.nodes_after << " nodes\n";
    std::cout << "wrote " << opt->output << " (opset " << onnx_io::export_opset(g) << "): " << before << " -> "
              << g.nodes().size() << " nodes\n";
  });
}

}  // namespace shrink::cli
