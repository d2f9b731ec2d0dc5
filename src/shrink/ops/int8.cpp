// Fast int8 kernels (domain ai.shrink, never exported) that the lower_int8 pass puts in
// place of ONNX's QDQ patterns. Between them flow LibTorch quantized tensors (quint8
// with their scale and zero point), so a chain Conv -> Conv -> Add stays in int8; each
// layer runs on the quantized engine's packed weights (oneDNN here), prepacked once on
// the first call and again only when the weight tensor changes.
//   Int8Quantize(x, y_scale, y_zp)                       float -> quint8 (QuantizeLinear)
//   Int8Dequantize(x, scale, zp)                          quint8 -> float (DequantizeLinear)
//   Int8Conv(x, w_int8, w_scale, bias?, y_scale, y_zp)    Conv attributes, relu: 0/1
//   Int8Linear(x, w_int8 [N,K], w_scale, bias?, y_scale, y_zp)   relu: 0/1
//   Int8Add(a, b, y_scale, y_zp)                          relu: 0/1
//   Int4MatMul(x, packed, scale, bias?)                  float -> float, 4-bit weights (int4.h)
//   Int8DynamicLinear(x, w_int8 [N,K], w_scale, bias?)   float -> float, x quantized per call (dnnl_kernels.h);
//                                                        per_token: 0/1
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/native/quantized/PackedParams.h>

#include <mutex>

#include "shrink/ops/common.h"
#include "shrink/ops/dnnl_kernels.h"
#include "shrink/ops/int4.h"
#include "shrink/ops/int8.h"
#include "shrink/ops/max_pool2d.h"
#include "shrink/ops/window.h"

namespace shrink::ops {

bool int8_engine_available() {
  static const bool available = [] {
    auto engines = at::globalContext().supportedQEngines();
    for (at::QEngine e : {at::QEngine::ONEDNN, at::QEngine::FBGEMM})
      if (std::find(engines.begin(), engines.end(), e) != engines.end()) {
        at::globalContext().setQEngine(e);
        return true;
      }
    return false;
  }();
  return available;
}

// The formula is ATen's quantize_val; the passes are vectorised.
at::Tensor quantize_uint8(const at::Tensor& x, double scale, int64_t zero_point) {
  const float inv_scale = 1.0f / static_cast<float>(scale);
  at::Tensor codes = x.mul(inv_scale).round_().add_(zero_point).clamp_(0, 255).to(at::kByte);
  return at::_make_per_tensor_quantized_tensor(codes, scale, zero_point);
}

namespace {

double scalar_of(const at::Tensor& t) { return t.item<double>(); }

// The int8 weight as a LibTorch quantized tensor: per channel along axis 0, or per tensor.
at::Tensor quantized_weight(const at::Tensor& w, const at::Tensor& scale) {
  if (scale.numel() == 1)
    return at::_make_per_tensor_quantized_tensor(w.contiguous(), scalar_of(scale), 0);
  return at::_make_per_channel_quantized_tensor(w.contiguous(), scale.reshape({-1}).to(at::kDouble),
                                                at::zeros({scale.numel()}, at::kLong), 0);
}

c10::optional<at::Tensor> bias_of(const Tensors& in) {
  if (in.size() > 3 && in[3].defined()) return in[3].to(at::kFloat).contiguous();
  return c10::nullopt;
}

// The packed weights of one node, rebuilt when the weight tensor changes.
template <typename Packed>
struct PackCache {
  std::mutex mutex;
  const void* weight = nullptr;
  int64_t version = -1;
  c10::intrusive_ptr<Packed> packed;

  template <typename F>
  c10::intrusive_ptr<Packed> get(const at::Tensor& w, F&& pack) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!packed || weight != w.data_ptr() || version != static_cast<int64_t>(w._version())) {
      packed = pack();
      weight = w.data_ptr();
      version = static_cast<int64_t>(w._version());
    }
    return packed;
  }
};

c10::List<int64_t> list_of(const std::vector<int64_t>& v) { return c10::List<int64_t>(v); }

Kernel conv_kernel(const ir::Node& node) {
  Window window = read_window(node.attrs, {});
  int64_t groups = node.attrs.get_int("group", 1);
  bool relu = node.attrs.get_int("relu", 0) != 0;
  auto cache = std::make_shared<PackCache<ConvPackedParamsBase<2>>>();
  return [=](const KernelContext&, const Tensors& in) -> Tensors {
    SHRINK_CHECK(in[0].is_quantized() && in[0].dim() == 4, node.describe(), ": Int8Conv expects a quantized 4-D input");
    auto packed = cache->get(in[1], [&] {
      static auto prepack =
          c10::Dispatcher::singleton()
              .findSchemaOrThrow("quantized::conv2d_prepack", "")
              .typed<c10::intrusive_ptr<ConvPackedParamsBase<2>>(at::Tensor, c10::optional<at::Tensor>, c10::List<int64_t>,
                                                                  c10::List<int64_t>, c10::List<int64_t>, int64_t)>();
      std::vector<int64_t> strides = window.strides, dilations = window.dilations;
      if (strides.empty()) strides.assign(2, 1);
      if (dilations.empty()) dilations.assign(2, 1);
      std::vector<int64_t> pads = window.pads_begin;
      if (pads.empty()) pads.assign(2, 0);
      return prepack.call(quantized_weight(in[1], in[2]), bias_of(in), list_of(strides), list_of(pads),
                          list_of(dilations), groups);
    });
    double ys = scalar_of(in[4]);
    int64_t yz = in[5].item<int64_t>();
    return {relu ? packed->apply_relu(in[0], ys, yz) : packed->apply(in[0], ys, yz)};
  };
}

// Int8Linear weights (inputs 1-3) packed for the quantized engine.
c10::intrusive_ptr<LinearPackedParamsBase> pack_linear(const Tensors& in) {
  static auto prepack = c10::Dispatcher::singleton()
                            .findSchemaOrThrow("quantized::linear_prepack", "")
                            .typed<c10::intrusive_ptr<LinearPackedParamsBase>(at::Tensor, c10::optional<at::Tensor>)>();
  return prepack.call(quantized_weight(in[1], in[2]), bias_of(in));
}

Kernel linear_kernel(const ir::Node& node) {
  bool relu = node.attrs.get_int("relu", 0) != 0;
  auto cache = std::make_shared<PackCache<LinearPackedParamsBase>>();
  return [=](const KernelContext&, const Tensors& in) -> Tensors {
    SHRINK_CHECK(in[0].is_quantized(), node.describe(), ": Int8Linear expects a quantized input");
    auto packed = cache->get(in[1], [&] { return pack_linear(in); });
    double ys = scalar_of(in[4]);
    int64_t yz = in[5].item<int64_t>();
    return {relu ? packed->apply_relu(in[0], ys, yz) : packed->apply(in[0], ys, yz)};
  };
}

// Activations quantized per batch (uint8, the range of this batch with 0 in it) or, with
// per_token: 1, per row (int8 symmetric); int8 weights, float output.
Kernel dynamic_linear_kernel(const ir::Node& node) {
  auto linear = std::make_shared<DynamicInt8Linear>(node.attrs.get_int("per_token", 0) != 0);
  return [=](const KernelContext&, const Tensors& in) -> Tensors {
    return {(*linear)(in[0], in[1], in[2], in.size() > 3 ? in[3] : at::Tensor())};
  };
}

Kernel add_kernel(const ir::Node& node) {
  bool relu = node.attrs.get_int("relu", 0) != 0;
  return [=](const KernelContext&, const Tensors& in) -> Tensors {
    static auto add = c10::Dispatcher::singleton()
                          .findSchemaOrThrow("quantized::add", "")
                          .typed<at::Tensor(at::Tensor, at::Tensor, double, int64_t)>();
    static auto add_relu = c10::Dispatcher::singleton()
                               .findSchemaOrThrow("quantized::add_relu", "")
                               .typed<at::Tensor(at::Tensor, at::Tensor, double, int64_t)>();
    SHRINK_CHECK(in[0].is_quantized() && in[1].is_quantized(), node.describe(), ": Int8Add expects quantized inputs");
    double ys = scalar_of(in[2]);
    int64_t yz = in[3].item<int64_t>();
    return {(relu ? add_relu : add).call(in[0], in[1], ys, yz)};
  };
}

TensorType with_dtype(TensorType t, at::ScalarType d) {
  t.dtype = d;
  return t;
}

// x [..., K] times a weight [N, K]: [..., N] of element type `out`.
ShapeFn linear_output(at::ScalarType out) {
  return [out](const InferContext& ctx) {
    TensorType y = ctx.input(0);
    if (y.has_shape && y.rank() >= 1 && ctx.input(1).has_shape) y.dims.back() = ctx.input(1).dims[0];
    return std::vector<TensorType>{with_dtype(y, out)};
  };
}

}  // namespace

void register_int8_ops(OpRegistry& registry) {
  struct Internal {  // every op here is of the ai.shrink domain
    OpRegistry& r;
    void add(OpDef d) {
      d.domain = "ai.shrink";
      r.add(std::move(d));
    }
  } r{registry};
  r.add(make_op(
      "Int8Quantize", 3, 3, [](const InferContext& ctx) { return std::vector<TensorType>{with_dtype(ctx.input(0), at::kByte)}; },
      simple_kernel([](const Tensors& in) {
        at::Tensor x = in[0].to(at::kFloat);
        if (x.dim() == 4) x = x.contiguous(at::MemoryFormat::ChannelsLast);
        return quantize_uint8(x, scalar_of(in[1]), in[2].item<int64_t>());
      })));
  r.add(make_op(
      "Int8Dequantize", 3, 3, [](const InferContext& ctx) { return std::vector<TensorType>{with_dtype(ctx.input(0), at::kFloat)}; },
      simple_kernel([](const Tensors& in) { return dequantize_inference(in[0]); })));  // channels-last stays
  r.add(make_op(
      "Int8Conv", 6, 6,
      [](const InferContext& ctx) {
        return std::vector<TensorType>{conv_output_type(ctx.input(0), ctx.input(1), ctx.node.attrs, at::kByte)};
      },
      conv_kernel));
  r.add(make_op("Int8Linear", 6, 6, linear_output(at::kByte), linear_kernel));
  r.add(make_op("Int8DynamicLinear", 4, 4, linear_output(at::kFloat), dynamic_linear_kernel));
  // Int4MatMul(x [..., K], packed uint8 [K/G, G/2, N], scale [K/G, 1, N], bias [N]?): float
  // out, the weight read as 4-bit codes (ops/int4.h; passes/fuse_int4.cpp makes it).
  r.add(make_op(
      "Int4MatMul", 3, 4,
      [](const InferContext& ctx) {
        TensorType y = ctx.input(0);
        if (y.has_shape && y.rank() >= 1 && ctx.input(1).has_shape && ctx.input(1).rank() == 3)
          y.dims.back() = ctx.input(1).dims[2];
        return std::vector<TensorType>{with_dtype(y, at::kFloat)};
      },
      [](const ir::Node&) -> Kernel {
        struct Cache {  // the kernel's layout of this node's weights, rebuilt when they change
          std::mutex mutex;
          const void* weight = nullptr;
          int64_t version = -1;
          Int4Blocks blocks;
        };
        auto cache = std::make_shared<Cache>();
        return [cache](const KernelContext&, const Tensors& in) -> Tensors {
          Int4Blocks blocks;
          {
            std::lock_guard<std::mutex> lock(cache->mutex);
            if (cache->weight != in[1].data_ptr() || cache->version != static_cast<int64_t>(in[1]._version())) {
              cache->blocks = int4_blocks(in[1], in[2]);
              cache->weight = in[1].data_ptr();
              cache->version = static_cast<int64_t>(in[1]._version());
            }
            if (in[0].numel() / std::max<int64_t>(in[0].size(-1), 1) > kInt4KernelRows && !cache->blocks.dense.defined())
              cache->blocks.dense = int4_unpack(in[1], in[2]);
            blocks = cache->blocks;
          }
          return {int4_linear(in[0], in[1], in[2], in.size() > 3 ? in[3] : at::Tensor(), &blocks)};
        };
      }));
  // Fake quantization for quantization-aware training (quantize/qat.h): quantize and
  // dequantize in float, gradient straight through inside the range; a scale that requires
  // grad is learned by LSQ (gradient scaled by 1/sqrt(numel * qmax)).
  r.add(make_op("FakeQuant", 3, 3, same_as_input(0), [](const ir::Node& node) -> Kernel {
    int64_t qmin = node.attrs.get_int("qmin"), qmax = node.attrs.get_int("qmax"), axis = node.attrs.get_int("axis", -1);
    return [=](const KernelContext&, const Tensors& in) -> Tensors {
      const at::Tensor& x = in[0];
      at::Tensor scale = in[1].to(at::kFloat).reshape({-1});
      at::Tensor zp = in[2].reshape({-1});
      if (in[1].requires_grad()) {
        double grad_factor = 1.0 / std::sqrt(static_cast<double>(x.numel() / std::max<int64_t>(scale.numel(), 1)) * qmax);
        at::Tensor s = scale.clamp_min(1e-8);
        at::Tensor z = zp.to(at::kFloat);
        if (axis >= 0)
          return {at::_fake_quantize_learnable_per_channel_affine(x, s, z, axis, qmin, qmax, grad_factor)};
        return {at::_fake_quantize_learnable_per_tensor_affine(x, s, z, qmin, qmax, grad_factor)};
      }
      if (axis >= 0) return {at::fake_quantize_per_channel_affine(x, scale, zp.to(at::kInt), axis, qmin, qmax)};
      return {at::fake_quantize_per_tensor_affine(x, scale.item<double>(), zp.item<int64_t>(), qmin, qmax)};
    };
  }));
  // Value-moving ops on int8 values (their output keeps the input's scale and zero point).
  r.add(make_op("Int8MaxPool", 1, 1,
                [](const InferContext& ctx) {  // MaxPool's shape function, on the same attributes
                  return std::vector<TensorType>{
                      with_dtype(OpRegistry::instance().find("MaxPool")->infer(ctx).at(0), at::kByte)};
                },
                [](const ir::Node& node) -> Kernel {
                  Window w = read_window(node.attrs, {});
                  bool ceil = node.attrs.get_int("ceil_mode", 0) != 0;
                  std::vector<int64_t> pads = w.pads_begin;
                  pads.insert(pads.end(), w.pads_end.begin(), w.pads_end.end());
                  return [w, ceil, pads](const KernelContext&, const Tensors& in) -> Tensors {
                    const at::Tensor& q = in[0];
                    if (!w.same() && q.is_quantized() && q.qscheme() == at::kPerTensorAffine &&
                        q.scalar_type() == at::kQUInt8 && q.dim() == 4 &&
                        is_2x2_stride2_window(w.kernel, w.strides, pads, w.dilations, ceil, q.size(2), q.size(3))) {
                      // The codes, without a copy (the blob keeps q alive).
                      at::Tensor raw = at::from_blob(q.data_ptr(), q.sizes(), q.strides(), [keep = q](void*) {},
                                                     q.options().dtype(at::kByte));
                      if (max_pool2d_2x2_uint8_applies(raw))
                        return {at::_make_per_tensor_quantized_tensor(max_pool2d_2x2_uint8(raw), q.q_scale(),
                                                                      q.q_zero_point())};
                    }
                    return {at::max_pool2d(q, w.kernel, w.strides, w.pads_begin, w.dilations, ceil)};
                  };
                }));
  r.add(make_op("Int8Flatten", 1, 1,
                [](const InferContext& ctx) {
                  TensorType t = ctx.input(0);
                  int64_t axis = ctx.node.attrs.get_int("axis", 1);
                  if (!t.has_shape) return std::vector<TensorType>{TensorType::unknown(at::kByte)};
                  if (axis < 0) axis += t.rank();
                  auto prod = [&](int64_t a, int64_t b) {
                    int64_t p = 1;
                    for (int64_t i = a; i < b; ++i) p = (t.dims[i] < 0 || p < 0) ? kDynamic : p * t.dims[i];
                    return p;
                  };
                  return std::vector<TensorType>{TensorType::of(at::kByte, {prod(0, axis), prod(axis, t.rank())})};
                },
                [](const ir::Node& node) -> Kernel {
                  int64_t axis = node.attrs.get_int("axis", 1);
                  return [axis](const KernelContext&, const Tensors& in) -> Tensors {
                    int64_t a = axis < 0 ? axis + in[0].dim() : axis;
                    at::Tensor x = in[0].contiguous();
                    int64_t outer = 1;
                    for (int64_t i = 0; i < a; ++i) outer *= x.size(i);
                    return {x.reshape({outer, x.numel() / std::max<int64_t>(outer, 1)})};
                  };
                }));
  r.add(make_op(
      "Int8Add", 4, 4, [](const InferContext& ctx) { return std::vector<TensorType>{broadcast_types(ctx.input(0), ctx.input(1), at::kByte)}; },
      add_kernel));
}

}  // namespace shrink::ops
