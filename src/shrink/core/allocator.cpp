#include "shrink/core/allocator.h"

#include <mutex>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace shrink {

void tune_allocator() {
  static std::once_flag once;
  std::call_once(once, [] {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's maximum: blocks below it come from the heap
    mallopt(M_TRIM_THRESHOLD, 1 << 30);   // freed heap memory is kept for the next run
#endif
  });
}

}  // namespace shrink
