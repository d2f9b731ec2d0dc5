// The op registry: one OpDef per ONNX operator, with shape inference and an ATen
// forward. A kernel is created once per node (attributes parsed there), then called
// per batch with tensors only (the XNNPACK create -> run lifecycle).
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <string>
#include <vector>

#include "shrink/ir/graph.h"

namespace shrink::ops {

// What shape inference sees of one node.
struct InferContext {
  const ir::Node& node;
  std::vector<ir::TensorType> inputs;        // absent optional inputs: TensorType::unknown
  std::vector<const at::Tensor*> constants;  // known input values (initializers), else nullptr

  bool has_input(size_t i) const { return i < inputs.size() && node.input(i) != nullptr; }
  const ir::TensorType& input(size_t i) const { return inputs.at(i); }
  const at::Tensor* constant(size_t i) const { return i < constants.size() ? constants[i] : nullptr; }
  // Integer values of a constant input; nullopt-like: empty `known` when not constant.
  bool constant_ints(size_t i, std::vector<int64_t>& out) const;
};

struct KernelContext {
  bool training = false;  // session mode: batch statistics, dropout, buffer updates
};

using Tensors = std::vector<at::Tensor>;
// Inputs arrive in node order; an absent optional input is an undefined tensor.
using Kernel = std::function<Tensors(const KernelContext&, const Tensors&)>;
using KernelFactory = std::function<Kernel(const ir::Node&)>;
using ShapeFn = std::function<std::vector<ir::TensorType>(const InferContext&)>;

struct OpDef {
  std::string name;
  std::string domain;  // "" for ONNX's ops; "ai.shrink" for the runtime's own (never exported)
  int min_inputs = 1;
  int max_inputs = 1;
  ShapeFn infer;
  KernelFactory make_kernel;
  // Input slots holding trained weights (Conv W and B, Gemm B and C, ...) and
  // running state (BatchNorm mean and variance); the importer uses them to tell
  // parameters, buffers and constants apart.
  std::vector<int> param_inputs;
  std::vector<int> buffer_inputs;
  bool deterministic = true;  // false: never constant-folded (Dropout, random ops)
  bool foldable = true;       // false: left as a node even on constants (DequantizeLinear keeps int8 weights)
};

class OpRegistry {
 public:
  static OpRegistry& instance();  // holds every built-in op
  void add(OpDef def);
  const OpDef* find(const std::string& op_type) const;
  const OpDef& get(const ir::Node& node) const;  // error naming the node if unknown
  std::vector<std::string> names() const;

 private:
  std::map<std::string, OpDef> defs_;
};

// Shape inference for one node: validates the input count, calls the op's shape function.
std::vector<ir::TensorType> infer_node(const ir::Node& node, const InferContext& ctx);

// One registration function per op family (each in its own file).
void register_conv_ops(OpRegistry&);
void register_linear_ops(OpRegistry&);
void register_elementwise_ops(OpRegistry&);
void register_activation_ops(OpRegistry&);
void register_normalization_ops(OpRegistry&);
void register_pool_ops(OpRegistry&);
void register_shape_ops(OpRegistry&);
void register_reduce_ops(OpRegistry&);
void register_tensor_ops(OpRegistry&);
void register_quant_ops(OpRegistry&);
void register_int8_ops(OpRegistry&);

}  // namespace shrink::ops
