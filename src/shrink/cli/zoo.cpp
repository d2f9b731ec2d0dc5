// shrink zoo: the model zoo with parameters and MACs for an input shape.
#include <iostream>
#include <nlohmann/json.hpp>

#include "shrink/cli/commands.h"
#include "shrink/cli/validators.h"
#include "shrink/core/error.h"
#include "shrink/report/model_stats.h"
#include "shrink/zoo/zoo.h"

namespace shrink::cli {

void add_zoo_command(CLI::App& app) {
  struct Options {
    std::vector<int64_t> input = {1, 28, 28};
    int64_t classes = 10;
    double width = 1.0;
    bool json = false;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("zoo", "List the model zoo with parameters and MACs per sample");
  cmd->add_option("--input", opt->input, "input C H W")->expected(3)->capture_default_str();
  cmd->add_option("--classes", opt->classes, "classes")->check(range(2, 100000))->capture_default_str();
  cmd->add_option("--width", opt->width, "width multiplier")->check(positive())->capture_default_str();
  cmd->add_flag("--json", opt->json, "print JSON");
  cmd->callback([opt] {
    nlohmann::json j = nlohmann::json::array();
    if (!opt->json)
      std::printf("%-14s %12s %14s  %s\n", "model", "parameters", "MACs/sample", "description");
    for (const auto& m : zoo::models()) {
      zoo::ModelOptions mo{opt->input, opt->classes, opt->width, 0};
      report::ModelStats s = report::model_stats(zoo::build_model(m.name, mo));
      j.push_back({{"name", m.name}, {"description", m.description}, {"parameters", s.parameters}, {"macs", s.macs}});
      if (!opt->json)
        std::printf("%-14s %12ld %14ld  %s\n", m.name.c_str(), static_cast<long>(s.parameters), static_cast<long>(s.macs),
                    m.description.c_str());
    }
    if (opt->json) std::cout << j.dump(2) << "\n";
  });
}

}  // namespace shrink::cli
