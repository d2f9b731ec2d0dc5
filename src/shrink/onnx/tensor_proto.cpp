#include "shrink/onnx/tensor_proto.h"

#include <ATen/ATen.h>
#include <onnx/onnx_pb.h>

#include <cstring>

#include "shrink/core/atomic_file.h"
#include "shrink/core/error.h"
#include "shrink/core/limits.h"
#include "shrink/ir/tensor_type.h"

namespace shrink::onnx_io {
namespace {

template <typename Field>
at::Tensor from_field(const Field& field, int64_t numel, at::ScalarType stored, at::ScalarType target,
                      const std::string& where) {
  SHRINK_CHECK(static_cast<int64_t>(field.size()) == numel, where, ": has ", field.size(),
               " values, its shape needs ", numel);
  at::Tensor t = at::empty({numel}, at::TensorOptions().dtype(stored));
  if (numel) std::memcpy(t.data_ptr(), field.data(), numel * t.element_size());
  if (stored == target) return t;
  if (target == at::kHalf || target == at::kBFloat16)  // 16-bit floats travel as raw bits in int32
    return t.to(at::kShort).view(target);
  return t.to(target);
}

}  // namespace

at::Tensor tensor_from_proto(const onnx::TensorProto& proto, const std::string& where) {
  SHRINK_CHECK(proto.data_location() != onnx::TensorProto::EXTERNAL, where,
               ": tensor data stored in an external file is not supported");
  at::ScalarType type;
  try {
    type = ir::scalar_type_from_onnx(proto.data_type());
  } catch (const Error& e) {
    fail(where, ": ", e.what());
  }
  std::vector<int64_t> dims(proto.dims().begin(), proto.dims().end());
  // Checked before anything is allocated: no overflow, within --max-tensor-bytes.
  const int64_t element = static_cast<int64_t>(c10::elementSize(type));
  const int64_t bytes = checked_tensor_bytes(dims, element, where);
  const int64_t numel = bytes / element;  // exact, and no overflow: bytes passed the cap
  at::Tensor flat;
  if (proto.has_raw_data()) {
    const std::string& raw = proto.raw_data();
    int64_t want = numel * static_cast<int64_t>(c10::elementSize(type));
    SHRINK_CHECK(static_cast<int64_t>(raw.size()) == want, where, ": raw data has ", raw.size(),
                 " bytes, shape and type need ", want);
    flat = at::empty({numel}, at::TensorOptions().dtype(type));
    if (numel) std::memcpy(flat.data_ptr(), raw.data(), raw.size());
  } else {
    switch (type) {
      case at::kFloat: flat = from_field(proto.float_data(), numel, at::kFloat, type, where); break;
      case at::kDouble: flat = from_field(proto.double_data(), numel, at::kDouble, type, where); break;
      case at::kLong: flat = from_field(proto.int64_data(), numel, at::kLong, type, where); break;
      default: flat = from_field(proto.int32_data(), numel, at::kInt, type, where); break;
    }
  }
  return flat.reshape(dims);
}

at::Tensor tensor_from_sparse_proto(const onnx::SparseTensorProto& proto, const std::string& where) {
  at::Tensor values = tensor_from_proto(proto.values(), where + " (values)");
  at::Tensor indices = tensor_from_proto(proto.indices(), where + " (indices)").to(at::kLong);
  std::vector<int64_t> dims(proto.dims().begin(), proto.dims().end());
  // The dense shape may be anything a few bytes declare: capped before zeros() touches it.
  checked_tensor_bytes(dims, values.element_size(), where);
  at::Tensor dense = at::zeros(dims, values.options());
  int64_t nnz = values.numel();
  if (nnz == 0) return dense;
  at::Tensor linear;
  if (indices.dim() == 1) {
    linear = indices;
  } else {  // [nnz, rank] coordinates
    SHRINK_CHECK(indices.dim() == 2 && indices.size(1) == static_cast<int64_t>(dims.size()), where,
                 ": sparse indices must be [nnz] or [nnz, rank]");
    linear = at::zeros({nnz}, at::kLong);
    for (size_t d = 0; d < dims.size(); ++d) linear = linear * dims[d] + indices.select(1, d);
  }
  SHRINK_CHECK(linear.numel() == nnz, where, ": ", linear.numel(), " indices for ", nnz, " values");
  SHRINK_CHECK(nnz == 0 || (linear.min().item<int64_t>() >= 0 && linear.max().item<int64_t>() < dense.numel()),
               where, ": sparse index out of range");
  dense.view(-1).index_put_({linear}, values.view(-1));
  return dense;
}

void tensor_to_proto(const at::Tensor& tensor, onnx::TensorProto& proto) {
  at::Tensor t = tensor.detach().contiguous().cpu();
  proto.set_data_type(ir::onnx_type_from_scalar(t.scalar_type()));
  proto.clear_dims();
  for (int64_t d : t.sizes()) proto.add_dims(d);
  proto.set_raw_data(std::string(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size()));
}

at::Tensor read_tensor_file(const std::string& path) {
  onnx::TensorProto proto;
  SHRINK_CHECK(proto.ParseFromString(read_file(path)), path, ": not a serialized ONNX TensorProto");
  return tensor_from_proto(proto, path);
}

}  // namespace shrink::onnx_io
