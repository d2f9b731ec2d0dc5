// Elementwise unary functions and activations.
#include "shrink/ops/common.h"
#include "shrink/ops/dnnl_kernels.h"

namespace shrink::ops {
namespace {

using UnaryFn = std::function<at::Tensor(const at::Tensor&)>;
// Reads the node's attributes once, at kernel creation, and returns the function.
using UnaryFactory = std::function<UnaryFn(const ir::Attributes&)>;

OpDef unary(const std::string& name, UnaryFactory factory,
            std::optional<at::ScalarType> out = std::nullopt) {
  OpDef d;
  d.name = name;
  d.infer = [out](const InferContext& ctx) -> std::vector<TensorType> {
    TensorType t = ctx.input(0);
    if (out) t.dtype = *out;
    return {t};
  };
  d.make_kernel = [factory](const ir::Node& node) -> Kernel {
    UnaryFn fn = factory(node.attrs);
    return [fn](const KernelContext&, const Tensors& in) -> Tensors { return {fn(in[0])}; };
  };
  return d;
}

// An attribute-free function of x.
#define SHRINK_UNARY(NAME, EXPR)                                           \
  r.add(unary(NAME, [](const ir::Attributes&) -> UnaryFn {                 \
    return [](const at::Tensor& x) -> at::Tensor { return EXPR; };         \
  }))
// A function of x and one float attribute `v` (with its ONNX default).
#define SHRINK_UNARY_ATTR(NAME, ATTR, DEFAULT, EXPR)                       \
  r.add(unary(NAME, [](const ir::Attributes& a) -> UnaryFn {               \
    double v = a.get_float(ATTR, DEFAULT);                                 \
    return [v](const at::Tensor& x) -> at::Tensor { return EXPR; };        \
  }))

at::Tensor hard_sigmoid(const at::Tensor& x, double alpha, double beta) {
  return at::clamp(x * alpha + beta, 0.0, 1.0);
}

}  // namespace

void register_activation_ops(OpRegistry& r) {
  SHRINK_UNARY("Relu", at::relu(x));
  SHRINK_UNARY_ATTR("LeakyRelu", "alpha", 0.01f, at::leaky_relu(x, v));
  SHRINK_UNARY_ATTR("Elu", "alpha", 1.0f, at::elu(x, v));
  SHRINK_UNARY_ATTR("Celu", "alpha", 1.0f, at::celu(x, v));
  SHRINK_UNARY_ATTR("ThresholdedRelu", "alpha", 1.0f, at::where(x > v, x, at::zeros_like(x)));
  r.add(unary("Selu", [](const ir::Attributes& a) -> UnaryFn {
    double alpha = a.get_float("alpha", 1.67326319217681884765625f);
    double gamma = a.get_float("gamma", 1.05070102214813232421875f);
    return [=](const at::Tensor& x) { return gamma * at::where(x > 0, x, alpha * at::expm1(x)); };
  }));
  r.add(unary("HardSigmoid", [](const ir::Attributes& a) -> UnaryFn {
    double alpha = a.get_float("alpha", 0.2f), beta = a.get_float("beta", 0.5f);
    return [=](const at::Tensor& x) { return hard_sigmoid(x, alpha, beta); };
  }));
  SHRINK_UNARY("Sigmoid", at::sigmoid(x));
  SHRINK_UNARY("HardSwish", x * hard_sigmoid(x, 1.0 / 6.0, 0.5));
  SHRINK_UNARY("Tanh", at::tanh(x));
  // log(1 + exp(x)) computed stably; ONNX's Softplus has no beta or threshold.
  SHRINK_UNARY("Softplus", at::softplus(x, 1.0, 1e30));
  SHRINK_UNARY("Softsign", x / (at::abs(x) + 1));
  SHRINK_UNARY("Erf", at::erf(x));
  // What the fuse_gelu pass puts in place of PyTorch's export of exact GELU (Div, Erf, Add,
  // Mul, Mul): one vectorised ATen pass instead of five. Of the ai.shrink domain: ONNX's own
  // Gelu comes with opset 20, which this ONNX (1.12) has no test data for.
  OpDef gelu = unary("Gelu", [](const ir::Attributes& a) -> UnaryFn {
    std::string approximate = a.get_string("approximate", "none");
    SHRINK_CHECK(approximate == "none" || approximate == "tanh", "Gelu: attribute 'approximate' must be 'none' or 'tanh', got '",
                 approximate, "'");
    return [approximate](const at::Tensor& x) { return at::gelu(x, approximate); };
  });
  gelu.domain = "ai.shrink";
  r.add(gelu);
  SHRINK_UNARY("Exp", at::exp(x));
  SHRINK_UNARY("Log", at::log(x));
  SHRINK_UNARY("Sqrt", at::sqrt(x));
  SHRINK_UNARY("Neg", at::neg(x));
  SHRINK_UNARY("Abs", at::abs(x));
  SHRINK_UNARY("Sign", at::sign(x));
  SHRINK_UNARY("Reciprocal", at::reciprocal(x));
  SHRINK_UNARY("Floor", at::floor(x));
  SHRINK_UNARY("Ceil", at::ceil(x));
  SHRINK_UNARY("Round", at::round(x));
  SHRINK_UNARY("Sin", at::sin(x));
  SHRINK_UNARY("Cos", at::cos(x));
  SHRINK_UNARY("Tan", at::tan(x));
  SHRINK_UNARY("Asin", at::asin(x));
  SHRINK_UNARY("Acos", at::acos(x));
  SHRINK_UNARY("Atan", at::atan(x));
  SHRINK_UNARY("Sinh", at::sinh(x));
  SHRINK_UNARY("Cosh", at::cosh(x));
  SHRINK_UNARY("Asinh", at::asinh(x));
  SHRINK_UNARY("Acosh", at::acosh(x));
  SHRINK_UNARY("Atanh", at::atanh(x));
  SHRINK_UNARY("Identity", x);
  r.add(unary("Shrink", [](const ir::Attributes& a) -> UnaryFn {
    double lambd = a.get_float("lambd", 0.5f), bias = a.get_float("bias", 0.0f);
    return [=](const at::Tensor& x) {
      return at::where(x < -lambd, x + bias, at::where(x > lambd, x - bias, at::zeros_like(x)));
    };
  }));
  r.add(unary("Not", [](const ir::Attributes&) -> UnaryFn {
    return [](const at::Tensor& x) { return at::logical_not(x); };
  }, at::kBool));
  r.add(unary("IsNaN", [](const ir::Attributes&) -> UnaryFn {
    return [](const at::Tensor& x) { return at::isnan(x); };
  }, at::kBool));
  r.add(unary("IsInf", [](const ir::Attributes& a) -> UnaryFn {
    bool neg = a.get_int("detect_negative", 1), pos = a.get_int("detect_positive", 1);
    return [=](const at::Tensor& x) {
      if (neg && pos) return at::isinf(x);
      if (pos) return at::isposinf(x);
      if (neg) return at::isneginf(x);
      return at::zeros_like(x, x.options().dtype(at::kBool));
    };
  }, at::kBool));

  // PRelu: slope broadcasts unidirectionally to X (ONNX), wider than at::prelu allows.
  OpDef prelu;
  prelu.name = "PRelu";
  prelu.min_inputs = prelu.max_inputs = 2;
  prelu.param_inputs = {1};
  prelu.infer = same_as_input(0);
  prelu.make_kernel = simple_kernel(
      [](const Tensors& in) { return at::where(in[0] < 0, in[0] * in[1], in[0]); });
  r.add(prelu);

  OpDef clip;
  clip.name = "Clip";
  clip.max_inputs = 3;
  clip.infer = same_as_input(0);
  clip.make_kernel = simple_kernel([](const Tensors& in) {
    at::Tensor y = in[0];
    if (in.size() > 1 && in[1].defined()) y = at::maximum(y, in[1].to(y.scalar_type()));
    if (in.size() > 2 && in[2].defined()) y = at::minimum(y, in[2].to(y.scalar_type()));
    return y.is_same(in[0]) ? y.clone() : y;
  });
  r.add(clip);

  for (const char* name : {"Softmax", "LogSoftmax", "Hardmax"}) {
    OpDef d;
    d.name = name;
    d.infer = same_as_input(0);
    enum Kind { kSoftmax, kLogSoftmax, kHardmax };
    Kind kind = std::string(name) == "Softmax" ? kSoftmax : std::string(name) == "LogSoftmax" ? kLogSoftmax : kHardmax;
    d.make_kernel = [kind](const ir::Node& node) -> Kernel {
      int64_t axis = node.attrs.get_int("axis", -1);  // opset 13 semantics (importer upgrades older)
      return [kind, axis](const KernelContext&, const Tensors& in) -> Tensors {
        int64_t ax = normalize_axis(axis, in[0].dim());
        if (kind != kHardmax) return {softmax_inference(in[0], ax, kind == kLogSoftmax)};
        at::Tensor arg = in[0].argmax(ax, true);
        return {at::zeros_like(in[0]).scatter_(ax, arg, 1.0)};
      };
    };
    r.add(d);
  }
}

}  // namespace shrink::ops
