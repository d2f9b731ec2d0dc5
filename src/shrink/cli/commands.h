// One function per subcommand: it adds its options to the app and the callback
// that parses nothing further and calls the library.
#pragma once
#include <CLI/CLI.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace shrink::cli {

// "a,b,,c" -> {"a", "b", "c"}: the comma-separated lists of names flags take.
inline std::vector<std::string> comma_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

void add_run_command(CLI::App& app);
void add_info_command(CLI::App& app);
void add_convert_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_zoo_command(CLI::App& app);
void add_prune_command(CLI::App& app);
void add_sensitivity_command(CLI::App& app);
void add_factorize_command(CLI::App& app);
void add_quantize_command(CLI::App& app);
void add_compress_command(CLI::App& app);
void add_distill_command(CLI::App& app);
void add_data_command(CLI::App& app);

}  // namespace shrink::cli
