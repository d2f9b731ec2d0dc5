// Element type and shape of a value. A dimension of kDynamic is unknown until run
// time (typically the batch, which ONNX names with a dim_param such as "N").
#pragma once
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <string>
#include <vector>

namespace shrink::ir {

constexpr int64_t kDynamic = -1;

struct TensorType {
  at::ScalarType dtype = at::ScalarType::Float;
  bool has_shape = false;             // false: even the rank is unknown
  std::vector<int64_t> dims;          // kDynamic for an unknown extent
  std::vector<std::string> dim_names; // optional symbolic names, same length as dims or empty

  static TensorType unknown(at::ScalarType t) { return TensorType{t, false, {}, {}}; }
  static TensorType of(at::ScalarType t, std::vector<int64_t> d) {
    return TensorType{t, true, std::move(d), {}};
  }
  int64_t rank() const { return static_cast<int64_t>(dims.size()); }
  bool is_static() const;          // shape known and every dim fixed
  int64_t numel() const;           // product of dims; kDynamic if not static
  std::string to_string() const;   // "float32[N,3,32,32]"
};

// True when every known extent of a agrees with b (kDynamic matches anything).
bool compatible(const TensorType& a, const TensorType& b);

std::string dtype_name(at::ScalarType t);

}  // namespace shrink::ir

namespace shrink::ir {
// ONNX TensorProto.DataType <-> ATen. Unsupported codes are an error naming the code.
at::ScalarType scalar_type_from_onnx(int onnx_type);
int onnx_type_from_scalar(at::ScalarType t);
}  // namespace shrink::ir
