#include "shrink/core/threads.h"

#include <ATen/Parallel.h>

#include <atomic>
#include <cstdlib>
#include <thread>

#include "shrink/core/error.h"
#include "shrink/core/parse.h"

namespace shrink {
namespace {
std::atomic<bool> threads_configured{false};
}

void set_threads(int n) {
  SHRINK_CHECK(n <= kMaxThreads, "--threads: expected an integer from 0 to ", kMaxThreads, ", got ", n);
  if (n <= 0) {
    const char* env = std::getenv("OMP_NUM_THREADS");
    if (env && *env) n = static_cast<int>(parse_int(env, "OMP_NUM_THREADS", 1, kMaxThreads));
  }
  if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
  if (n <= 0) n = 1;
  at::set_num_threads(n);
  threads_configured = true;
}

void ensure_default_threads() {
  if (!threads_configured.exchange(true)) set_threads(0);
}

int current_threads() { return at::get_num_threads(); }

}  // namespace shrink
