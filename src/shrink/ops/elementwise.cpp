// Broadcasting binary and variadic arithmetic, comparisons and logic.
#include "shrink/ops/common.h"

namespace shrink::ops {
namespace {

OpDef binary(const std::string& name, std::function<at::Tensor(const at::Tensor&, const at::Tensor&)> fn,
             std::optional<at::ScalarType> out = std::nullopt) {
  OpDef d;
  d.name = name;
  d.min_inputs = d.max_inputs = 2;
  d.infer = broadcast_all(out);
  d.make_kernel = simple_kernel([fn](const Tensors& in) { return fn(in[0], in[1]); });
  return d;
}

// Max, Min, Sum, Mean: any number of inputs, folded pairwise.
OpDef variadic(const std::string& name,
               std::function<at::Tensor(const at::Tensor&, const at::Tensor&)> fold,
               bool mean = false) {
  OpDef d;
  d.name = name;
  d.min_inputs = 1;
  d.max_inputs = 1 << 20;
  d.infer = broadcast_all();
  d.make_kernel = simple_kernel([fold, mean](const Tensors& in) {
    at::Tensor acc = in[0];
    for (size_t i = 1; i < in.size(); ++i) acc = fold(acc, in[i]);
    if (mean) acc = acc / static_cast<double>(in.size());
    if (in.size() == 1) acc = acc.clone();
    return acc;
  });
  return d;
}

at::Tensor divide(const at::Tensor& a, const at::Tensor& b) {
  // ONNX integer division truncates toward zero, like C.
  if (at::isIntegralType(a.scalar_type(), false)) return at::div(a, b, "trunc");
  return at::div(a, b);
}

}  // namespace

void register_elementwise_ops(OpRegistry& r) {
  r.add(binary("Add", [](auto& a, auto& b) { return at::add(a, b); }));
  r.add(binary("Sub", [](auto& a, auto& b) { return at::sub(a, b); }));
  r.add(binary("Mul", [](auto& a, auto& b) { return at::mul(a, b); }));
  r.add(binary("Div", divide));
  r.add(binary("Pow", [](auto& a, auto& b) { return at::pow(a, b).to(a.scalar_type()); }));
  r.add(binary("Equal", [](auto& a, auto& b) { return at::eq(a, b); }, at::kBool));
  r.add(binary("Greater", [](auto& a, auto& b) { return at::gt(a, b); }, at::kBool));
  r.add(binary("Less", [](auto& a, auto& b) { return at::lt(a, b); }, at::kBool));
  r.add(binary("GreaterOrEqual", [](auto& a, auto& b) { return at::ge(a, b); }, at::kBool));
  r.add(binary("LessOrEqual", [](auto& a, auto& b) { return at::le(a, b); }, at::kBool));
  r.add(binary("And", [](auto& a, auto& b) { return at::logical_and(a, b); }, at::kBool));
  r.add(binary("Or", [](auto& a, auto& b) { return at::logical_or(a, b); }, at::kBool));
  r.add(binary("Xor", [](auto& a, auto& b) { return at::logical_xor(a, b); }, at::kBool));
  r.add(variadic("Max", [](auto& a, auto& b) { return at::maximum(a, b); }));
  r.add(variadic("Min", [](auto& a, auto& b) { return at::minimum(a, b); }));
  r.add(variadic("Sum", [](auto& a, auto& b) { return at::add(a, b); }));
  r.add(variadic("Mean", [](auto& a, auto& b) { return at::add(a, b); }, true));

  OpDef mod;
  mod.name = "Mod";
  mod.min_inputs = mod.max_inputs = 2;
  mod.infer = broadcast_all();
  mod.make_kernel = [](const ir::Node& node) -> Kernel {
    bool c_style = node.attrs.get_int("fmod", 0) != 0;
    return [c_style](const KernelContext&, const Tensors& in) -> Tensors {
      return {c_style ? at::fmod(in[0], in[1]) : at::remainder(in[0], in[1])};
    };
  };
  r.add(mod);

  OpDef where;
  where.name = "Where";
  where.min_inputs = where.max_inputs = 3;
  where.infer = [](const InferContext& ctx) -> std::vector<TensorType> {
    at::ScalarType t = ctx.input(1).dtype;
    return {broadcast_types(broadcast_types(ctx.input(0), ctx.input(1), t), ctx.input(2), t)};
  };
  where.make_kernel = simple_kernel([](const Tensors& in) { return at::where(in[0], in[1], in[2]); });
  r.add(where);
}

}  // namespace shrink::ops
