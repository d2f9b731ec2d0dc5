#include "shrink/ops/registry.h"

#include "shrink/core/error.h"
#include "shrink/ops/common.h"

namespace shrink::ops {

bool InferContext::constant_ints(size_t i, std::vector<int64_t>& out) const {
  const at::Tensor* t = constant(i);
  if (!t) return false;
  out = to_ints(*t);
  return true;
}

OpRegistry& OpRegistry::instance() {
  static OpRegistry* registry = [] {
    auto* r = new OpRegistry();
    register_conv_ops(*r);
    register_linear_ops(*r);
    register_elementwise_ops(*r);
    register_activation_ops(*r);
    register_normalization_ops(*r);
    register_pool_ops(*r);
    register_shape_ops(*r);
    register_reduce_ops(*r);
    register_tensor_ops(*r);
    register_quant_ops(*r);
    register_int8_ops(*r);
    return r;
  }();
  return *registry;
}

void OpRegistry::add(OpDef def) {
  SHRINK_CHECK(!defs_.count(def.name), "op '", def.name, "' registered twice");
  SHRINK_CHECK(def.infer && def.make_kernel, "op '", def.name,
               "' needs a shape function and a kernel");
  defs_[def.name] = std::move(def);
}

const OpDef* OpRegistry::find(const std::string& op_type) const {
  auto it = defs_.find(op_type);
  return it == defs_.end() ? nullptr : &it->second;
}

const OpDef& OpRegistry::get(const ir::Node& node) const {
  const OpDef* def = find(node.op_type);
  SHRINK_CHECK(def, node.describe(), ": operator '", node.op_type, "' is not supported");
  return *def;
}

std::vector<std::string> OpRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [n, d] : defs_) out.push_back(n);
  return out;
}

std::vector<ir::TensorType> infer_node(const ir::Node& node, const InferContext& ctx) {
  const OpDef& def = OpRegistry::instance().get(node);
  int given = static_cast<int>(node.inputs().size());
  SHRINK_CHECK(given >= def.min_inputs && given <= def.max_inputs, node.describe(), ": has ",
               given, " inputs, expected ", def.min_inputs,
               def.min_inputs == def.max_inputs ? "" : msg(" to ", def.max_inputs));
  for (int i = 0; i < def.min_inputs; ++i)
    SHRINK_CHECK(node.input(i), node.describe(), ": required input ", i, " is missing");
  try {
    return def.infer(ctx);
  } catch (const Error& e) {
    fail(node.describe(), ": ", e.what());
  } catch (const std::exception& e) {
    fail(node.describe(), ": shape inference failed: ", e.what());
  }
}

}  // namespace shrink::ops
