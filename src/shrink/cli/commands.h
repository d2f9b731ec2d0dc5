// One function per subcommand: it adds its options to the app and the callback
// that parses nothing further and calls the library.
#pragma once
#include <CLI/CLI.hpp>

namespace shrink::cli {

void add_run_command(CLI::App& app);
void add_info_command(CLI::App& app);
void add_convert_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_zoo_command(CLI::App& app);
void add_prune_command(CLI::App& app);
void add_sensitivity_command(CLI::App& app);

}  // namespace shrink::cli
