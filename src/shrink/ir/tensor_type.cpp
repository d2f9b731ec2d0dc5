#include "shrink/ir/tensor_type.h"

#include <sstream>

namespace shrink::ir {

bool TensorType::is_static() const {
  if (!has_shape) return false;
  for (int64_t d : dims)
    if (d < 0) return false;
  return true;
}

int64_t TensorType::numel() const {
  if (!is_static()) return kDynamic;
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

std::string dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kLong: return "int64";
    case at::kInt: return "int32";
    case at::kShort: return "int16";
    case at::kChar: return "int8";
    case at::kByte: return "uint8";
    case at::kBool: return "bool";
    case at::kQInt8: return "qint8";
    case at::kQUInt8: return "quint8";
    default: return c10::toString(t);
  }
}

std::string TensorType::to_string() const {
  std::ostringstream out;
  out << dtype_name(dtype);
  if (!has_shape) return out.str() + "[?]";
  out << '[';
  // Errors quote types: a hostile file's thousand dimensions print as the first
  // eight and a count, keeping the line short.
  constexpr size_t kShown = 8;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) out << ',';
    if (i == kShown && dims.size() > kShown + 1) {
      out << "... (" << dims.size() << " dims)";
      break;
    }
    if (dims[i] >= 0)
      out << dims[i];
    else if (i < dim_names.size() && !dim_names[i].empty())
      out << dim_names[i];
    else
      out << '?';
  }
  out << ']';
  return out.str();
}

bool compatible(const TensorType& a, const TensorType& b) {
  if (!a.has_shape || !b.has_shape) return true;
  if (a.dims.size() != b.dims.size()) return false;
  for (size_t i = 0; i < a.dims.size(); ++i)
    if (a.dims[i] >= 0 && b.dims[i] >= 0 && a.dims[i] != b.dims[i]) return false;
  return true;
}

}  // namespace shrink::ir

#include "shrink/core/error.h"

namespace shrink::ir {

at::ScalarType scalar_type_from_onnx(int onnx_type) {
  switch (onnx_type) {
    case 1: return at::kFloat;
    case 2: return at::kByte;
    case 3: return at::kChar;
    case 5: return at::kShort;
    case 6: return at::kInt;
    case 7: return at::kLong;
    case 9: return at::kBool;
    case 10: return at::kHalf;
    case 11: return at::kDouble;
    case 16: return at::kBFloat16;
    default:
      fail("ONNX element type ", onnx_type,
           " is not supported (expected float, double, float16, bfloat16, int8/16/32/64, uint8 or bool)");
  }
}

int onnx_type_from_scalar(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return 1;
    case at::kByte: return 2;
    case at::kChar: return 3;
    case at::kShort: return 5;
    case at::kInt: return 6;
    case at::kLong: return 7;
    case at::kBool: return 9;
    case at::kHalf: return 10;
    case at::kDouble: return 11;
    case at::kBFloat16: return 16;
    default: fail("tensor type ", dtype_name(t), " has no ONNX equivalent");
  }
}

}  // namespace shrink::ir
