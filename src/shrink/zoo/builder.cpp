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

void Builder::output(ir::Value* x, const std::string& name) {
  g_.rename_value(x, name);
  g_.add_output(x);
}

}  // namespace shrink::zoo
