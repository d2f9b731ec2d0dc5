// The flag every subcommand that writes a model has: --storage (how initializers are
// written on disk, onnx_io::Storage).
#pragma once
#include <CLI/CLI.hpp>

#include "shrink/onnx/export.h"

namespace shrink::cli {

// Adds --storage compact|sparse|dense to cmd, parsed into *storage.
void add_storage_flag(CLI::App* cmd, onnx_io::Storage* storage);

}  // namespace shrink::cli
