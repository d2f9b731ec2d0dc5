// Hard caps on what an input file may make shrink allocate. A file of N bytes can
// declare tensors far larger than itself (a sparse initializer of any shape, a
// ConstantOfShape, an IDX header); every declared size is checked against the cap
// before anything is allocated. The cap is a process-wide setting:
// `shrink --max-tensor-bytes B` or SHRINK_MAX_TENSOR_BYTES raise (or lower) it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace shrink {

constexpr int64_t kDefaultMaxTensorBytes = int64_t{4} << 30;  // 4 GiB

int64_t max_tensor_bytes();  // the cap in force (the environment variable read once)
void set_max_tensor_bytes(int64_t bytes);

// The element count of `dims` (every one >= 0) times `element_size`, checked for
// overflow and against the cap; throws Error starting with `what` otherwise.
int64_t checked_tensor_bytes(const std::vector<int64_t>& dims, int64_t element_size, const std::string& what);

}  // namespace shrink
