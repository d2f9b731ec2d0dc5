#pragma once

namespace shrink {

// The most intra-op threads shrink starts, from a flag or OMP_NUM_THREADS: beyond
// it a typo (`--threads 1000000`) would keep creating threads until memory ran out.
constexpr int kMaxThreads = 1024;

// Sets LibTorch's intra-op thread count. n <= 0 means: OMP_NUM_THREADS if set,
// otherwise the number of hardware threads (OpenMP here starts with one). Throws
// Error for n > kMaxThreads or an OMP_NUM_THREADS that is not 1..kMaxThreads.
void set_threads(int n);

// Calls set_threads(0) once per process unless set_threads was already called.
void ensure_default_threads();

int current_threads();

}  // namespace shrink
