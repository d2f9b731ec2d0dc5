// ONNX TensorProto <-> at::Tensor.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

namespace onnx {
class TensorProto;
class SparseTensorProto;
}  // namespace onnx

namespace shrink::onnx_io {

// `where` names the tensor in errors ("model.onnx: initializer 'fc.weight'").
at::Tensor tensor_from_proto(const onnx::TensorProto& proto, const std::string& where);
at::Tensor tensor_from_sparse_proto(const onnx::SparseTensorProto& proto, const std::string& where);
void tensor_to_proto(const at::Tensor& tensor, onnx::TensorProto& proto);

// A serialized TensorProto file (the ONNX test-data input_0.pb format).
at::Tensor read_tensor_file(const std::string& path);

}  // namespace shrink::onnx_io
