#include "shrink/ops/common.h"

namespace shrink::ops {

TensorType broadcast_types(const TensorType& a, const TensorType& b, at::ScalarType out) {
  if (!a.has_shape || !b.has_shape) return TensorType::unknown(out);
  size_t rank = std::max(a.dims.size(), b.dims.size());
  std::vector<int64_t> dims(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.dims.size() ? 1 : a.dims[i - (rank - a.dims.size())];
    int64_t db = i < rank - b.dims.size() ? 1 : b.dims[i - (rank - b.dims.size())];
    if (da == 1) dims[i] = db;
    else if (db == 1) dims[i] = da;
    else if (da == kDynamic) dims[i] = db;
    else if (db == kDynamic) dims[i] = da;
    else {
      SHRINK_CHECK(da == db, "cannot broadcast ", a.to_string(), " with ", b.to_string());
      dims[i] = da;
    }
  }
  return TensorType::of(out, dims);
}

ShapeFn same_as_input(size_t i) {
  return [i](const InferContext& ctx) -> std::vector<TensorType> { return {ctx.input(i)}; };
}

ShapeFn broadcast_all(std::optional<at::ScalarType> out) {
  return [out](const InferContext& ctx) -> std::vector<TensorType> {
    at::ScalarType t = out ? *out : ctx.input(0).dtype;
    TensorType result = ctx.input(0);
    result.dtype = t;
    result.dim_names.clear();
    for (size_t i = 1; i < ctx.inputs.size(); ++i)
      result = broadcast_types(result, ctx.input(i), t);
    return {result};
  };
}

std::vector<int64_t> to_ints(const at::Tensor& t) {
  at::Tensor flat = t.detach().to(at::kLong).contiguous().view(-1);
  return std::vector<int64_t>(flat.data_ptr<int64_t>(), flat.data_ptr<int64_t>() + flat.numel());
}

}  // namespace shrink::ops
