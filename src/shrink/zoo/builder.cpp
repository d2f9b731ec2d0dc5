#include "shrink/zoo/builder.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <cmath>

#include "shrink/core/error.h"
#include "shrink/ops/shape_inference.h"

namespace shrink::zoo {

std::string Builder::scoped(const std::string& base) {
  std::string prefix;
  for (const auto& s : scope_) prefix += s + ".";
  std::string key = prefix + base;
  int n = counters_[key]++;
  return n == 0 ? key : key + std::to_string(n);
}

ir::Value* Builder::param(const std::string& name, at::Tensor t, ir::InitKind kind) {
  return g_.add_initializer(name, t.contiguous(), kind);
}

ir::Value* Builder::node(const std::string& op, const std::string& base, std::vector<ir::Value*> inputs,
                         ir::Attributes attrs) {
  std::string name = scoped(base);
  ir::Node* n = g_.add_node(op, inputs, {name + ".out"}, std::move(attrs), name);
  ops::infer_node_types(g_, *n);
  return n->output(0);
}

ir::Value* Builder::input(const std::string& name, std::vector<int64_t> chw) {
  std::vector<int64_t> dims = {ir::kDynamic};
  dims.insert(dims.end(), chw.begin(), chw.end());
  ir::TensorType t = ir::TensorType::of(at::kFloat, dims);
  t.dim_names = std::vector<std::string>(dims.size());
  t.dim_names[0] = "N";
  return g_.add_input(name, t);
}

ir::Value* Builder::conv(ir::Value* x, int64_t out, int64_t kernel, int64_t stride, int64_t pad, int64_t groups,
                         bool bias) {
  at::NoGradGuard no_grad;
  int64_t in = channels(x);
  SHRINK_CHECK(in % groups == 0 && out % groups == 0, "conv: channels ", in, "->", out, " not divisible by groups ", groups);
  std::string name = scoped("conv");
  int64_t fan_in = in / groups * kernel * kernel, fan_out = out / groups * kernel * kernel;
  at::Tensor w;
  if (bias) {
    double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    w = at::empty({out, in / groups, kernel, kernel}).uniform_(-bound, bound);
  } else {
    w = at::empty({out, in / groups, kernel, kernel}).normal_(0.0, std::sqrt(2.0 / fan_out));
  }
  std::vector<ir::Value*> inputs = {x, param(name + ".weight", w)};
  if (bias) {
    double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    inputs.push_back(param(name + ".bias", at::empty({out}).uniform_(-bound, bound)));
  }
  ir::Attributes a;
  a.set("kernel_shape", std::vector<int64_t>{kernel, kernel});
  a.set("strides", std::vector<int64_t>{stride, stride});
  a.set("pads", std::vector<int64_t>{pad, pad, pad, pad});
  if (groups != 1) a.set("group", groups);
  ir::Node* n = g_.add_node("Conv", inputs, {name + ".out"}, a, name);
  ops::infer_node_types(g_, *n);
  return n->output(0);
}

ir::Value* Builder::batch_norm(ir::Value* x) {
  int64_t c = channels(x);
  std::string name = scoped("bn");
  std::vector<ir::Value*> inputs = {x, param(name + ".weight", at::ones({c})), param(name + ".bias", at::zeros({c})),
                                    param(name + ".running_mean", at::zeros({c}), ir::InitKind::Buffer),
                                    param(name + ".running_var", at::ones({c}), ir::InitKind::Buffer)};
  ir::Node* n = g_.add_node("BatchNormalization", inputs, {name + ".out"}, {}, name);
  ops::infer_node_types(g_, *n);
  return n->output(0);
}

ir::Value* Builder::relu(ir::Value* x) { return node("Relu", "relu", {x}); }

ir::Value* Builder::relu6(ir::Value* x) {
  std::string name = scoped("relu6");
  ir::Value* lo = param(name + ".min", at::scalar_tensor(0.0f), ir::InitKind::Constant);
  ir::Value* hi = param(name + ".max", at::scalar_tensor(6.0f), ir::InitKind::Constant);
  ir::Node* n = g_.add_node("Clip", {x, lo, hi}, {name + ".out"}, {}, name);
  ops::infer_node_types(g_, *n);
  return n->output(0);
}

ir::Value* Builder::max_pool(ir::Value* x, int64_t kernel, int64_t stride, int64_t pad, bool ceil_mode) {
  ir::Attributes a;
  a.set("kernel_shape", std::vector<int64_t>{kernel, kernel});
  a.set("strides", std::vector<int64_t>{stride, stride});
  a.set("pads", std::vector<int64_t>{pad, pad, pad, pad});
  if (ceil_mode) a.set("ceil_mode", int64_t{1});
  return node("MaxPool", "pool", {x}, a);
}

ir::Value* Builder::global_avg_pool(ir::Value* x) { return node("GlobalAveragePool", "avgpool", {x}); }
ir::Value* Builder::flatten(ir::Value* x) { return node("Flatten", "flatten", {x}); }

ir::Value* Builder::linear(ir::Value* x, int64_t out, bool bias) {
  at::NoGradGuard no_grad;
  int64_t in = x->type.dims.at(1);
  std::string name = scoped("fc");
  double bound = 1.0 / std::sqrt(static_cast<double>(in));
  std::vector<ir::Value*> inputs = {x, param(name + ".weight", at::empty({out, in}).uniform_(-bound, bound))};
  if (bias) inputs.push_back(param(name + ".bias", at::empty({out}).uniform_(-bound, bound)));
  ir::Attributes a;
  a.set("transB", int64_t{1});
  ir::Node* n = g_.add_node("Gemm", inputs, {name + ".out"}, a, name);
  ops::infer_node_types(g_, *n);
  return n->output(0);
}

ir::Value* Builder::dropout(ir::Value* x, float ratio) {
  std::string name = scoped("dropout");
  ir::Value* r = param(name + ".ratio", at::scalar_tensor(ratio), ir::InitKind::Constant);
  ir::Node* n = g_.add_node("Dropout", {x, r}, {name + ".out"}, {}, name);
  ops::infer_node_types(g_, *n);
  return n->output(0);
}

ir::Value* Builder::add(ir::Value* a, ir::Value* b) { return node("Add", "add", {a, b}); }

ir::Value* Builder::concat(const std::vector<ir::Value*>& xs, int64_t axis) {
  ir::Attributes a;
  a.set("axis", axis);
  return node("Concat", "cat", xs, a);
}

std::vector<ir::Value*> Builder::split_channels(ir::Value* x, int parts) {
  std::string name = scoped("split");
  std::vector<std::string> outs;
  for (int i = 0; i < parts; ++i) outs.push_back(name + ".out" + std::to_string(i));
  ir::Attributes a;
  a.set("axis", int64_t{1});
  ir::Node* n = g_.add_node("Split", {x}, outs, a, name);
  ops::infer_node_types(g_, *n);
  return n->outputs();
}

ir::Value* Builder::channel_shuffle(ir::Value* x, int64_t groups) {
  const auto& d = x->type.dims;
  std::string name = scoped("shuffle");
  ir::Value* s1 = param(name + ".shape1", at::tensor({int64_t{0}, groups, d[1] / groups, d[2], d[3]}), ir::InitKind::Constant);
  ir::Value* s2 = param(name + ".shape2", at::tensor({int64_t{0}, d[1], d[2], d[3]}), ir::InitKind::Constant);
  ir::Value* r = node("Reshape", "shuffle_split", {x, s1});
  ir::Attributes perm;
  perm.set("perm", std::vector<int64_t>{0, 2, 1, 3, 4});
  ir::Value* t = node("Transpose", "shuffle_swap", {r}, perm);
  return node("Reshape", "shuffle_merge", {t, s2});
}

ir::Value* Builder::dense(ir::Value* x, int64_t out, const std::string& base, bool bias) {
  at::NoGradGuard no_grad;
  int64_t in = x->type.dims.back();
  std::string name = scoped(base);
  double bound = 1.0 / std::sqrt(static_cast<double>(in));
  ir::Value* w = param(name + ".weight", at::empty({out, in}).uniform_(-bound, bound).t().contiguous());
  ir::Node* mm = g_.add_node("MatMul", {x, w}, {name + ".out"}, {}, name);
  ops::infer_node_types(g_, *mm);
  if (!bias) return mm->output(0);
  ir::Value* b = param(name + ".bias", at::empty({out}).uniform_(-bound, bound));
  ir::Node* add = g_.add_node("Add", {mm->output(0), b}, {name + ".biased"}, {}, name + ".add_bias");
  ops::infer_node_types(g_, *add);
  return add->output(0);
}

ir::Value* Builder::layer_norm(ir::Value* x, float epsilon) {
  int64_t d = x->type.dims.back();
  std::string name = scoped("ln");
  ir::Attributes a;
  a.set("axis", int64_t{-1});
  a.set("epsilon", epsilon);
  ir::Node* n = g_.add_node("LayerNormalization",
                            {x, param(name + ".weight", at::ones({d})), param(name + ".bias", at::zeros({d}))},
                            {name + ".out"}, a, name);
  ops::infer_node_types(g_, *n);
  return n->output(0);
}

ir::Value* Builder::gelu(ir::Value* x) {
  std::string name = scoped("gelu");
  auto constant = [&](const char* what, float v) {
    return param(name + "." + what, at::scalar_tensor(v), ir::InitKind::Constant);
  };
  ir::Value* e = node("Erf", "gelu_erf", {node("Div", "gelu_div", {x, constant("sqrt2", std::sqrt(2.0f))})});
  ir::Value* y = node("Mul", "gelu_mul", {x, node("Add", "gelu_add", {e, constant("one", 1.0f)})});
  return node("Mul", "gelu_half", {y, constant("half", 0.5f)});
}

ir::Value* Builder::softmax(ir::Value* x, int64_t axis) {
  ir::Attributes a;
  a.set("axis", axis);
  return node("Softmax", "softmax", {x}, a);
}

ir::Value* Builder::matmul(ir::Value* a, ir::Value* b) { return node("MatMul", "matmul", {a, b}); }

ir::Value* Builder::scale(ir::Value* x, float factor) {
  ir::Value* f = param(scoped("scale_factor"), at::scalar_tensor(factor), ir::InitKind::Constant);
  return node("Mul", "scale", {x, f});
}

ir::Value* Builder::reshape(ir::Value* x, const std::vector<int64_t>& shape) {
  ir::Value* s = param(scoped("reshape_shape"), at::tensor(shape), ir::InitKind::Constant);
  return node("Reshape", "reshape", {x, s});
}

ir::Value* Builder::transpose(ir::Value* x, const std::vector<int64_t>& perm) {
  ir::Attributes a;
  a.set("perm", perm);
  return node("Transpose", "transpose", {x}, a);
}

ir::Value* Builder::add_learned(ir::Value* x, const std::string& base, std::vector<int64_t> shape, double std) {
  at::NoGradGuard no_grad;
  std::string name = scoped(base);
  return node("Add", base + "_add", {x, param(name, at::empty(shape).normal_(0.0, std))});
}

ir::Value* Builder::prepend_token(ir::Value* x, const std::string& base) {
  int64_t d = x->type.dims.back();
  std::string name = scoped(base);
  ir::Value* token = param(name, at::zeros({1, 1, d}));
  // Expand the token to [N, 1, D]: Expand broadcasts [1, 1, D] against [N, 1, 1].
  ir::Attributes first;
  first.set("end", int64_t{1});
  ir::Value* batch = node("Shape", base + "_batch", {x}, first);
  ir::Value* ones = param(name + ".ones", at::tensor({int64_t{1}, int64_t{1}}), ir::InitKind::Constant);
  ir::Attributes axis0;
  axis0.set("axis", int64_t{0});
  ir::Value* shape = node("Concat", base + "_shape", {batch, ones}, axis0);
  ir::Value* tokens = node("Expand", base + "_expand", {token, shape});
  return concat({tokens, x}, 1);
}

ir::Value* Builder::take(ir::Value* x, int64_t axis, int64_t index) {
  ir::Value* i = param(scoped("take_index"), at::scalar_tensor(index, at::kLong), ir::InitKind::Constant);
  ir::Attributes a;
  a.set("axis", axis);
  return node("Gather", "take", {x, i}, a);
}

void Builder::output(ir::Value* x, const std::string& name) {
  g_.rename_value(x, name);
  g_.add_output(x);
}

}  // namespace shrink::zoo
