// Quantization operators: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear and
// the integer ops ONNX Runtime's quantizer writes (MatMulInteger, ConvInteger,
// QLinearMatMul, QLinearConv). These are the reference kernels, exact to the spec: the
// integer products are accumulated in float64, which holds every int8 x int8 sum of
// fewer than 2^37 terms exactly. Fast int8 execution comes from the int8 pass, which
// replaces QDQ patterns by oneDNN's quantized kernels.
#include "shrink/ops/quant.h"

#include "shrink/ops/common.h"
#include "shrink/ops/window.h"

namespace shrink::ops {

namespace {

struct IntRange {
  double lo, hi;
};

IntRange range_of(at::ScalarType t) {
  switch (t) {
    case at::kByte: return {0, 255};
    case at::kChar: return {-128, 127};
    case at::kInt: return {-2147483648.0, 2147483647.0};
    default: fail("quantized type must be uint8, int8 or int32, got ", c10::toString(t));
  }
}

// A per-axis parameter (scale or zero point) shaped to broadcast along `axis` of x;
// a scalar (or one-element) parameter stays as it is.
at::Tensor along_axis(const at::Tensor& p, int64_t axis, int64_t rank) {
  if (p.dim() == 0 || p.numel() == 1) return p.reshape({});
  SHRINK_CHECK(p.dim() == 1, "scale and zero point must be scalars or 1-D, got rank ", p.dim());
  std::vector<int64_t> shape(static_cast<size_t>(rank), 1);
  shape[static_cast<size_t>(normalize_axis(axis, rank))] = p.size(0);
  return p.reshape(shape);
}

}  // namespace

at::Tensor quantize_linear(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero_point,
                           at::ScalarType type, int64_t axis) {
  IntRange r = range_of(type);
  // Divided in the input's precision, as the reference does (float32 / float32); int32
  // (bias) in float64, whose integers are exact past 2^24.
  at::ScalarType compute = type == at::kInt || x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor s = along_axis(scale.to(compute), axis, x.dim());
  at::Tensor q = at::round(x.to(compute) / s);  // round half to even, as the spec asks
  if (zero_point.defined()) q = q + along_axis(zero_point.to(compute), axis, x.dim());
  return q.clamp(r.lo, r.hi).to(type);
}

at::Tensor dequantize_linear(const at::Tensor& q, const at::Tensor& scale, const at::Tensor& zero_point, int64_t axis) {
  at::Tensor x = q.to(at::kDouble);
  if (zero_point.defined()) x = x - along_axis(zero_point.to(at::kDouble), axis, q.dim());
  return (x * along_axis(scale.to(at::kDouble), axis, q.dim())).to(scale.scalar_type());
}

namespace {

// The zero point of an integer operand, as float64 shaped to broadcast (or undefined).
at::Tensor centered(const at::Tensor& q, const at::Tensor& zp, int64_t axis) {
  at::Tensor x = q.to(at::kDouble);
  if (!zp.defined()) return x;
  return x - along_axis(zp.to(at::kDouble), axis, q.dim());
}

const at::Tensor& opt(const Tensors& in, size_t i) {
  static const at::Tensor none;
  return i < in.size() ? in[i] : none;
}

// MatMul's A zero point is per row of A (axis -2); B's per column (axis -1).
at::Tensor int_matmul(const Tensors& in, size_t a, size_t azp, size_t b, size_t bzp) {
  const at::Tensor& A = in[a];
  const at::Tensor& B = in[b];
  int64_t a_axis = A.dim() >= 2 ? A.dim() - 2 : 0;
  return at::matmul(centered(A, opt(in, azp), a_axis), centered(B, opt(in, bzp), B.dim() - 1));
}

at::Tensor requantize(const at::Tensor& acc, const at::Tensor& scale, const at::Tensor& y_scale,
                      const at::Tensor& y_zp, int64_t axis) {
  at::Tensor real = acc * along_axis(scale.to(at::kDouble), axis, acc.dim());
  return quantize_linear(real, y_scale, y_zp, y_zp.scalar_type(), 1);
}

TensorType matmul_type(const TensorType& a, const TensorType& b, at::ScalarType out) {
  if (!a.has_shape || !b.has_shape || a.rank() < 2 || b.rank() < 2) return TensorType::unknown(out);
  TensorType batch = broadcast_types(TensorType::of(out, std::vector<int64_t>(a.dims.begin(), a.dims.end() - 2)),
                                     TensorType::of(out, std::vector<int64_t>(b.dims.begin(), b.dims.end() - 2)), out);
  batch.dims.push_back(a.dims[a.dims.size() - 2]);
  batch.dims.push_back(b.dims.back());
  return batch;
}

}  // namespace

void register_quant_ops(OpRegistry& r) {
  r.add(make_op("QuantizeLinear", 2, 3,
                [](const InferContext& ctx) -> std::vector<TensorType> {
                  TensorType t = ctx.input(0);
                  t.dtype = ctx.has_input(2) ? ctx.input(2).dtype : at::kByte;
                  return {t};
                },
                [](const ir::Node& node) -> Kernel {
                  int64_t axis = node.attrs.get_int("axis", 1);
                  return [axis](const KernelContext&, const Tensors& in) -> Tensors {
                    const at::Tensor& zp = opt(in, 2);
                    return {quantize_linear(in[0], in[1], zp, zp.defined() ? zp.scalar_type() : at::kByte, axis)};
                  };
                }));
  OpDef dequantize = make_op("DequantizeLinear", 2, 3,
                [](const InferContext& ctx) -> std::vector<TensorType> {
                  TensorType t = ctx.input(0);
                  t.dtype = ctx.input(1).dtype;
                  return {t};
                },
                [](const ir::Node& node) -> Kernel {
                  int64_t axis = node.attrs.get_int("axis", 1);
                  return [axis](const KernelContext&, const Tensors& in) -> Tensors {
                    return {dequantize_linear(in[0], in[1], opt(in, 2), axis)};
                  };
                });
  // Quantized weights stay int8 for the int8 kernels (lower_int8 folds what they leave).
  dequantize.foldable = false;
  r.add(std::move(dequantize));
  // uint8, with the range widened to include 0 (the spec's formula, ties to even).
  r.add(make_op("DynamicQuantizeLinear", 1, 1,
                [](const InferContext& ctx) -> std::vector<TensorType> {
                  TensorType y = ctx.input(0);
                  y.dtype = at::kByte;
                  return {y, TensorType::of(at::kFloat, {}), TensorType::of(at::kByte, {})};
                },
                [](const ir::Node&) -> Kernel {
                  return [](const KernelContext&, const Tensors& in) -> Tensors {
                  at::Tensor x = in[0].to(at::kFloat);
                  float lo = std::min(0.0f, x.numel() ? x.min().item<float>() : 0.0f);
                  float hi = std::max(0.0f, x.numel() ? x.max().item<float>() : 0.0f);
                  float scale = (hi - lo) / 255.0f;
                  at::Tensor s = at::scalar_tensor(scale, at::kFloat);
                  if (scale == 0) return {at::zeros(x.sizes(), at::kByte), s, at::scalar_tensor(0, at::kByte)};
                  double zp = std::nearbyint(std::clamp(-lo / scale, 0.0f, 255.0f));
                  at::Tensor z = at::scalar_tensor(zp, at::kByte);
                  return {quantize_linear(x, s, z, at::kByte, 1), s, z};
                  };
                }));
  r.add(make_op("MatMulInteger", 2, 4,
                [](const InferContext& ctx) -> std::vector<TensorType> {
                  return {matmul_type(ctx.input(0), ctx.input(1), at::kInt)};
                },
                simple_kernel([](const Tensors& in) { return int_matmul(in, 0, 2, 1, 3).to(at::kInt); })));
  r.add(make_op("QLinearMatMul", 8, 8,
                [](const InferContext& ctx) -> std::vector<TensorType> {
                  return {matmul_type(ctx.input(0), ctx.input(3), ctx.input(7).dtype)};
                },
                simple_kernel([](const Tensors& in) {
                  at::Tensor acc = int_matmul(in, 0, 2, 3, 5);
                  // a_scale is a scalar; b_scale may be per column (the last axis).
                  at::Tensor scale = in[1].to(at::kDouble) * in[4].to(at::kDouble);
                  return requantize(acc, scale, in[6], in[7], acc.dim() - 1);
                })));
  r.add(make_op("ConvInteger", 2, 4,
                [](const InferContext& ctx) -> std::vector<TensorType> {
                  return {conv_output_type(ctx.input(0), ctx.input(1), ctx.node.attrs, at::kInt)};
                },
                [](const ir::Node& node) -> Kernel {
                  ir::Attributes attrs = node.attrs;
                  return [attrs](const KernelContext&, const Tensors& in) -> Tensors {
                    // ONNX pads the raw input with its zero point: pad the centred input with 0.
                    at::Tensor x = centered(in[0], opt(in, 2), 1);
                    at::Tensor w = centered(in[1], opt(in, 3), 0);
                    return {convolve(x, w, at::Tensor(), attrs).to(at::kInt)};
                  };
                }));
  r.add(make_op("QLinearConv", 8, 9,
                [](const InferContext& ctx) -> std::vector<TensorType> {
                  return {conv_output_type(ctx.input(0), ctx.input(3), ctx.node.attrs, ctx.input(7).dtype)};
                },
                [](const ir::Node& node) -> Kernel {
                  ir::Attributes attrs = node.attrs;
                  return [attrs](const KernelContext&, const Tensors& in) -> Tensors {
                    at::Tensor x = centered(in[0], in[2], 1);
                    at::Tensor w = centered(in[3], in[5], 0);
                    at::Tensor acc = convolve(x, w, at::Tensor(), attrs);
                    const at::Tensor& bias = opt(in, 8);
                    if (bias.defined()) acc = acc + along_axis(bias.to(at::kDouble), 1, acc.dim());
                    at::Tensor scale = in[1].to(at::kDouble) * in[4].to(at::kDouble);  // w_scale per output channel
                    return {requantize(acc, scale, in[6], in[7], 1)};
                  };
                }));
}

}  // namespace shrink::ops
