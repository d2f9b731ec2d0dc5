#pragma once

namespace shrink {

// Sets LibTorch's intra-op thread count. n <= 0 means: OMP_NUM_THREADS if set,
// otherwise the number of hardware threads (OpenMP here starts with one).
void set_threads(int n);

// Calls set_threads(0) once per process unless set_threads was already called.
void ensure_default_threads();

int current_threads();

}  // namespace shrink
