#include "shrink/cli/output_flags.h"

#include <string>

namespace shrink::cli {

void add_storage_flag(CLI::App* cmd, onnx_io::Storage* storage) {
  cmd->add_option_function<std::string>(
         "--storage", [storage](const std::string& word) { *storage = onnx_io::parse_storage(word); },
         "how initializers are written: compact (each in its smallest exact form; packed streams "
         "are decoded by standard ops that ONNX Runtime folds at session creation, which costs it "
         "milliseconds on large layers), sparse (dense or sparse initializers only: no decode nodes, "
         "session creation as fast as dense), dense")
      ->check(CLI::IsMember({"compact", "sparse", "dense"}))
      ->default_str("compact");
}

}  // namespace shrink::cli
