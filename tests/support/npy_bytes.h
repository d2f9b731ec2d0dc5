// A .npy file with exactly the given header text, for tests of malformed files.
#pragma once
#include <string>

namespace shrink::test_support {

// Format 1.0 (2-byte header length), or 2.0/3.0 (4 bytes) when major > 1.
inline std::string npy_with_header(const std::string& header, const std::string& data = "", int major = 1) {
  std::string out = std::string("\x93NUMPY", 6) + static_cast<char>(major) + '\0';
  const size_t n = header.size();
  for (int i = 0; i < (major == 1 ? 2 : 4); ++i) out += static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

}  // namespace shrink::test_support
