// NumPy .npy files (format 1.0 to 3.0, little-endian, C order): the plain tensor
// format of the Python ecosystem. (io/ is our addition to the layout: file formats
// that are neither ONNX nor datasets.)
//
// Reading validates before it allocates: the header's length, every dimension and
// the data size are checked against the file's size (and against numpy's own
// limits: a header of at most 10,000 bytes, at most 64 dimensions) first, so a
// file of N bytes never costs much more than N bytes of memory.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

namespace shrink {
class AtomicFile;
}

namespace shrink::io {

constexpr size_t kMaxNpyHeaderBytes = 10000;  // numpy's default max_header_size
constexpr int64_t kMaxNpyDims = 64;           // numpy 2's NPY_MAXDIMS

at::Tensor read_npy(const std::string& path);
// The same from bytes in memory (`label` names them in errors).
at::Tensor read_npy_bytes(const std::string& bytes, const std::string& label);
// Written through a temporary file and renamed (core/atomic_file.h).
void write_npy(const std::string& path, const at::Tensor& tensor);
// Into a file under construction (not committed): for several outputs written all
// or nothing with AtomicFileSet.
void write_npy(AtomicFile& file, const at::Tensor& tensor);
// The bytes write_npy writes.
std::string npy_bytes(const at::Tensor& tensor);

}  // namespace shrink::io
