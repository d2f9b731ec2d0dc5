// Where tests find packaged data, overridable by environment variables.
#pragma once
#include <cstdlib>
#include <string>

namespace shrink::test_support {

// ONNX's backend test data (Debian package libonnx-testdata).
inline std::string onnx_testdata_dir() {
  if (const char* env = std::getenv("SHRINK_ONNX_TESTDATA")) return env;
  return "/usr/share/libonnx-testdata/data";
}

// The Python with PyTorch, torchvision and onnx (Debian's python3-torch).
inline std::string python() {
  if (const char* env = std::getenv("SHRINK_PYTHON")) return env;
  return "/usr/bin/python3";
}

}  // namespace shrink::test_support
