// libFuzzer target: bytes -> gunzip (when gzip) -> a CIFAR-10 and a CIFAR-100 batch.
#include <cstddef>
#include <cstdint>
#include <string>

#include "shrink/core/error.h"
#include "shrink/data/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (bool cifar100 : {false, true}) {
    try {
      std::string bytes(reinterpret_cast<const char*>(data), size);
      shrink::data::parse_cifar_batch(shrink::data::gunzip_if_gzip(std::move(bytes), "fuzz.bin"), "fuzz.bin", cifar100);
    } catch (const shrink::Error&) {
    }
  }
  return 0;
}
