// 64-bit FNV-1a over bytes: cache keys (the distillation teacher cache, the compress
// pipeline's candidates). Not cryptographic; a key also records what it was made of.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace shrink {

struct Hasher {
  uint64_t h = 1469598103934665603ull;
  void bytes(const void* p, size_t n) {
    const auto* c = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ c[i]) * 1099511628211ull;
  }
  void text(const std::string& s) { bytes(s.data(), s.size() + 1); }
  std::string hex() const {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
  }
};

}  // namespace shrink
