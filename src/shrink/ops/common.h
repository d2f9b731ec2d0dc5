// Helpers shared by the op families: axis handling, broadcasting, shape functions.
#pragma once
#include <ATen/ATen.h>

#include <optional>

#include "shrink/core/error.h"
#include "shrink/ops/registry.h"

namespace shrink::ops {

using ir::kDynamic;
using ir::TensorType;

inline int64_t normalize_axis(int64_t axis, int64_t rank) {
  SHRINK_CHECK(axis >= -rank && axis < rank, "axis ", axis, " out of range for rank ", rank);
  return axis < 0 ? axis + rank : axis;
}

// Numpy-style broadcast of two shapes, tolerating unknown extents.
TensorType broadcast_types(const TensorType& a, const TensorType& b, at::ScalarType out);

// Shape function: one output with the type of input `i`.
ShapeFn same_as_input(size_t i = 0);
// Shape function: one output, broadcast of all inputs, element type `out` or of input 0.
ShapeFn broadcast_all(std::optional<at::ScalarType> out = std::nullopt);

// A kernel for a pure function of the inputs.
template <typename F>
KernelFactory simple_kernel(F fn) {
  return [fn](const ir::Node&) -> Kernel {
    return [fn](const KernelContext&, const Tensors& in) -> Tensors { return {fn(in)}; };
  };
}

// An op with its input count range, shape function and kernel factory.
inline OpDef make_op(const std::string& name, int min_in, int max_in, ShapeFn infer, KernelFactory make) {
  OpDef d;
  d.name = name;
  d.min_inputs = min_in;
  d.max_inputs = max_in;
  d.infer = std::move(infer);
  d.make_kernel = std::move(make);
  return d;
}

// Known integer list of a runtime tensor (shapes, axes, pads given as inputs).
std::vector<int64_t> to_ints(const at::Tensor& t);

// A shape whose dims are all unknown but whose rank is known.
inline TensorType unknown_dims(at::ScalarType t, int64_t rank) {
  return TensorType::of(t, std::vector<int64_t>(static_cast<size_t>(rank), kDynamic));
}

}  // namespace shrink::ops
