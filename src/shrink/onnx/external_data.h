// ONNX external data: a TensorProto whose bytes live in a file beside the model
// (data_location = EXTERNAL, external_data = {location, offset, length}). Protobuf
// cannot hold a message over 2 GiB, so every model larger than that is stored this
// way: PyTorch's exporter writes one file per tensor, onnx.save_model's
// save_as_external_data one file for all, ONNX Runtime's and Olive's tools either.
#pragma once
#include <cstdint>
#include <string>

namespace onnx {
class ModelProto;
class TensorProto;
}

namespace shrink {
class AtomicFile;
}

namespace shrink::onnx_io {

// Protobuf's hard limit on one serialized message.
constexpr int64_t kMaxProtobufBytes = (int64_t{1} << 31) - 1;

// True when any initializer or Constant attribute of the main graph is external.
bool has_external_data(const onnx::ModelProto& model);

// Reads every external tensor of `model` (initializers, Constant nodes' tensors) from
// the files beside `model_path` into raw_data, as if the model had been saved whole.
// Refused, with the tensor and file named: a location outside the model's directory
// (absolute, with "..", or a symlink leading out), a file that is not a regular file
// or cannot be read, an offset or length that is not a number or runs past the end of
// the file, a length other than the bytes the tensor's type and shape need (checked
// before anything is read or allocated).
void load_external_data(onnx::ModelProto& model, const std::string& model_path);

// The bytes a model takes on disk: its file and the external data files it names
// (each counted once; a file that cannot be read counts nothing).
int64_t model_bytes_on_disk(const std::string& model_path);

// Moves the raw data of the initializers of at least `threshold` bytes into `data`,
// one after another at 64-byte aligned offsets, and marks each as external at
// `location` (a file name relative to the model's directory). Returns the bytes moved.
int64_t store_external_data(onnx::ModelProto& model, AtomicFile& data, const std::string& location,
                            int64_t threshold = 1024);

// The same one tensor at a time, as a model is being built.
class ExternalDataWriter {
 public:
  ExternalDataWriter(AtomicFile& data, std::string location, int64_t threshold = 1024)
      : data_(data), location_(std::move(location)), threshold_(threshold) {}
  // Moves `t`'s raw data to the file when it has `threshold` bytes or more; says whether.
  bool store(onnx::TensorProto& t);
  int64_t bytes() const { return offset_; }

 private:
  AtomicFile& data_;
  std::string location_;
  int64_t threshold_;
  int64_t offset_ = 0;
};

}  // namespace shrink::onnx_io
