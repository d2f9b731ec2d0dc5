#include <unistd.h>

#include <atomic>
#include <filesystem>

#include "support/onnx_builder.h"

namespace shrink::test_support {

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  path = (std::filesystem::temp_directory_path() /
          ("shrink_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++)))
             .string();
  std::filesystem::create_directories(path);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

}  // namespace shrink::test_support
