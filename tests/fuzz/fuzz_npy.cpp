// libFuzzer target: bytes -> the .npy reader. Anything but a clean shrink::Error
// (a crash, a leak, an allocation far beyond the input) is a defect.
#include <cstddef>
#include <cstdint>
#include <string>

#include "shrink/core/error.h"
#include "shrink/io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    shrink::io::read_npy_bytes(std::string(reinterpret_cast<const char*>(data), size), "fuzz.npy");
  } catch (const shrink::Error&) {
  }
  return 0;
}
