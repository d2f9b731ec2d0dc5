// libFuzzer target: bytes -> gunzip (when gzip) -> the IDX parser.
#include <cstddef>
#include <cstdint>
#include <string>

#include "shrink/core/error.h"
#include "shrink/data/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    std::string bytes(reinterpret_cast<const char*>(data), size);
    shrink::data::parse_idx(shrink::data::gunzip_if_gzip(std::move(bytes), "fuzz.idx"), "fuzz.idx");
  } catch (const shrink::Error&) {
  }
  return 0;
}
