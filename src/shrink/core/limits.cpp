#include "shrink/core/limits.h"

#include <atomic>
#include <cstdlib>
#include <limits>

#include "shrink/core/error.h"
#include "shrink/core/parse.h"

namespace shrink {
namespace {
std::atomic<int64_t> cap{-1};
}

int64_t max_tensor_bytes() {
  int64_t v = cap.load();
  if (v < 0) {
    const char* env = std::getenv("SHRINK_MAX_TENSOR_BYTES");
    v = env && *env ? parse_int(env, "SHRINK_MAX_TENSOR_BYTES", 1) : kDefaultMaxTensorBytes;
    cap = v;
  }
  return v;
}

void set_max_tensor_bytes(int64_t bytes) {
  SHRINK_CHECK(bytes > 0, "--max-tensor-bytes: expected a positive number of bytes, got ", bytes);
  cap = bytes;
}

int64_t checked_tensor_bytes(const std::vector<int64_t>& dims, int64_t element_size, const std::string& what) {
  const int64_t limit = max_tensor_bytes();
  int64_t bytes = element_size;
  for (int64_t d : dims) {
    SHRINK_CHECK(d >= 0, what, ": negative dimension ", d);
    if (d != 0 && bytes > std::numeric_limits<int64_t>::max() / d) bytes = std::numeric_limits<int64_t>::max();
    else bytes *= d;
  }
  if (bytes == 0) return 0;
  SHRINK_CHECK(bytes <= limit, what, ": ",
               bytes == std::numeric_limits<int64_t>::max() ? std::string("over 2^63") : std::to_string(bytes),
               " bytes, over the limit of ", limit, " (--max-tensor-bytes)");
  return bytes;
}

}  // namespace shrink
