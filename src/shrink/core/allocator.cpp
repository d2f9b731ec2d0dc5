#include "shrink/core/allocator.h"

#include <climits>
#include <mutex>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace shrink {

void tune_allocator() {
  static std::once_flag once;
  std::call_once(once, [] {
#if defined(__GLIBC__)
    mallopt(M_MMAP_MAX, 0);              // every block comes from the heap, however large
    mallopt(M_TRIM_THRESHOLD, INT_MAX);  // and freed heap memory is kept for the next run
#endif
  });
}

}  // namespace shrink
