// NumPy .npy files (format 1.0 to 3.0, little-endian, C order): the plain tensor
// format of the Python ecosystem. (io/ is our addition to the layout: file formats
// that are neither ONNX nor datasets.)
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

namespace shrink::io {

at::Tensor read_npy(const std::string& path);
// Written to a temporary file and renamed, so a reader never sees half a file.
void write_npy(const std::string& path, const at::Tensor& tensor);

}  // namespace shrink::io
