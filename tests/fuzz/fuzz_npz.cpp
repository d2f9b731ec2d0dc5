// libFuzzer target: bytes -> the .npz (zip) reader. Anything but a clean
// shrink::Error (a crash, a leak, an allocation far beyond the input) is a defect.
#include <cstddef>
#include <cstdint>
#include <string>

#include "shrink/core/error.h"
#include "shrink/io/npz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    shrink::io::read_npz_bytes(std::string(reinterpret_cast<const char*>(data), size), "fuzz.npz");
  } catch (const shrink::Error&) {
  }
  return 0;
}
