// BatchNormalization (inference and training), InstanceNormalization,
// LayerNormalization, LRN and Dropout.
#include <ATen/core/grad_mode.h>

#include "shrink/dist/dist.h"
#include "shrink/ops/common.h"

namespace shrink::ops {
namespace {


// Batch statistics when the node says training_mode=1 (ONNX opset 14) or the session
// trains; then running statistics move by ONNX's rule
//   running = running * momentum + batch * (1 - momentum)   (biased batch variance)
// and, in a training session, are written back into the graph's buffers.
Kernel make_batch_norm(const ir::Node& node) {
  double eps = node.attrs.get_float("epsilon", 1e-5f);
  double momentum = node.attrs.get_float("momentum", 0.9f);
  bool training_mode = node.attrs.get_int("training_mode", 0) != 0;
  size_t n_outputs = node.outputs().size();
  return [=](const KernelContext& ctx, const Tensors& in) -> Tensors {
    const at::Tensor &x = in[0], &scale = in[1], &bias = in[2], &mean = in[3], &var = in[4];
    if (!training_mode && !ctx.training)
      return {at::batch_norm(x, scale, bias, mean, var, false, 0.0, eps, false)};
    at::Tensor y, batch_mean, batch_invstd;
    if (ctx.training && dist::sync_batch_norm()) {
      // Statistics of the global batch: per-channel sums, sums of squares and counts
      // summed over the ranks (differentiably), in double.
      std::vector<int64_t> axes = {0};
      for (int64_t d = 2; d < x.dim(); ++d) axes.push_back(d);
      const at::Tensor xd = x.to(at::kDouble);
      const int64_t c = x.size(1);
      at::Tensor packed = at::cat({xd.sum(axes), (xd * xd).sum(axes),
                                   at::full({1}, static_cast<double>(x.numel() / c), xd.options())});
      packed = dist::all_reduce_sum(packed);
      at::Tensor count = packed.narrow(0, 2 * c, 1);
      at::Tensor m = packed.narrow(0, 0, c) / count, v = packed.narrow(0, c, c) / count - m * m;
      std::vector<int64_t> shape(x.dim(), 1);
      shape[1] = c;
      at::Tensor invstd = (v + eps).rsqrt();
      y = ((xd - m.view(shape)) * invstd.view(shape)).to(x.scalar_type()) * scale.view(shape) + bias.view(shape);
      batch_mean = m.to(x.scalar_type());
      batch_invstd = invstd.to(x.scalar_type());
    } else {
      std::tie(y, batch_mean, batch_invstd) = at::native_batch_norm(x, scale, bias, {}, {}, true, 0.0, eps);
    }
    if (n_outputs == 1 && !ctx.training) return {y};
    at::NoGradGuard no_grad;
    at::Tensor batch_var = batch_invstd.pow(-2) - eps;
    at::Tensor new_mean = mean * momentum + batch_mean * (1 - momentum);
    at::Tensor new_var = var * momentum + batch_var * (1 - momentum);
    if (ctx.training) {
      mean.detach().copy_(new_mean);
      var.detach().copy_(new_var);
    }
    return {y, new_mean, new_var, batch_mean, batch_var};
  };
}

std::vector<TensorType> infer_batch_norm(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  TensorType stat = ctx.input(3);
  if (x.has_shape) {
    SHRINK_CHECK(x.rank() >= 2, "input must have a channel axis, got ", x.to_string());
    for (size_t i = 1; i < 5; ++i) {
      const TensorType& p = ctx.input(i);
      if (p.has_shape && x.dims[1] != kDynamic)
        SHRINK_CHECK(p.rank() == 1 && (p.dims[0] == x.dims[1] || p.dims[0] == kDynamic),
                     "input ", i, " has shape ", p.to_string(), ", expected [", x.dims[1], "]");
    }
  }
  std::vector<TensorType> out = {x};
  for (size_t i = 1; i < ctx.node.outputs().size(); ++i) out.push_back(stat);
  return out;
}

Kernel make_lrn(const ir::Node& node) {
  double alpha = node.attrs.get_float("alpha", 1e-4f), beta = node.attrs.get_float("beta", 0.75f);
  double bias = node.attrs.get_float("bias", 1.0f);
  int64_t size = node.attrs.get_int("size");
  return [=](const KernelContext&, const Tensors& in) -> Tensors {
    const at::Tensor& x = in[0];
    int64_t n = x.size(0), c = x.size(1);
    // Sum of squares over a window of `size` channels: pad the channel axis, average-pool.
    at::Tensor sq = (x * x).reshape({n, 1, c, -1});
    sq = at::constant_pad_nd(sq, {0, 0, (size - 1) / 2, size - 1 - (size - 1) / 2}, 0);
    at::Tensor sum = at::avg_pool2d(sq, {size, 1}, {1, 1}) * static_cast<double>(size);
    at::Tensor denom = at::pow(sum.reshape(x.sizes()) * (alpha / size) + bias, beta);
    return {x / denom};
  };
}

Kernel make_layer_norm(const ir::Node& node) {
  int64_t axis = node.attrs.get_int("axis", -1);
  double eps = node.attrs.get_float("epsilon", 1e-5f);
  size_t n_outputs = node.outputs().size();
  return [=](const KernelContext&, const Tensors& in) -> Tensors {
    const at::Tensor& x = in[0];
    int64_t ax = normalize_axis(axis, x.dim());
    std::vector<int64_t> normalized(x.sizes().begin() + ax, x.sizes().end());
    at::Tensor b = in.size() > 2 ? in[2] : at::Tensor();
    auto [y, mean, rstd] = at::native_layer_norm(x, normalized, in[1], b, eps);
    if (n_outputs == 1) return {y};
    return {y, mean, rstd};
  };
}

Kernel make_dropout(const ir::Node& node) {
  float ratio_attr = node.attrs.get_float("ratio", 0.5f);  // opset < 12 (importer moves it)
  bool has_mask = node.outputs().size() > 1;
  return [=](const KernelContext& ctx, const Tensors& in) -> Tensors {
    const at::Tensor& x = in[0];
    double ratio = in.size() > 1 && in[1].defined() ? in[1].item<double>() : ratio_attr;
    bool train = in.size() > 2 && in[2].defined() ? in[2].item<bool>() : ctx.training;
    if (!train || ratio == 0.0) {
      at::Tensor y = x.clone();
      if (!has_mask) return {y};
      return {y, at::ones_like(x, x.options().dtype(at::kBool))};
    }
    at::Tensor mask = at::rand_like(x) >= ratio;
    at::Tensor y = x * mask / (1.0 - ratio);
    return {y, mask};
  };
}

}  // namespace

void register_normalization_ops(OpRegistry& r) {
  OpDef bn;
  bn.name = "BatchNormalization";
  bn.min_inputs = bn.max_inputs = 5;
  bn.param_inputs = {1, 2};
  bn.buffer_inputs = {3, 4};
  bn.infer = infer_batch_norm;
  bn.make_kernel = make_batch_norm;
  r.add(bn);

  OpDef inorm;
  inorm.name = "InstanceNormalization";
  inorm.min_inputs = inorm.max_inputs = 3;
  inorm.param_inputs = {1, 2};
  inorm.infer = same_as_input(0);
  inorm.make_kernel = [](const ir::Node& node) -> Kernel {
    double eps = node.attrs.get_float("epsilon", 1e-5f);
    return [eps](const KernelContext&, const Tensors& in) -> Tensors {
      return {at::instance_norm(in[0], in[1], in[2], {}, {}, true, 0.0, eps, false)};
    };
  };
  r.add(inorm);

  OpDef ln;
  ln.name = "LayerNormalization";
  ln.min_inputs = 2;
  ln.max_inputs = 3;
  ln.param_inputs = {1, 2};
  ln.infer = [](const InferContext& ctx) -> std::vector<TensorType> {
    std::vector<TensorType> out = {ctx.input(0)};
    const TensorType& x = ctx.input(0);
    if (ctx.node.outputs().size() > 1) {
      TensorType stat = x;
      stat.dtype = at::kFloat;
      if (x.has_shape) {
        int64_t ax = normalize_axis(ctx.node.attrs.get_int("axis", -1), x.rank());
        for (int64_t i = ax; i < x.rank(); ++i) stat.dims[i] = 1;
      }
      out.push_back(stat);
      out.push_back(stat);
    }
    return out;
  };
  ln.make_kernel = make_layer_norm;
  r.add(ln);

  OpDef lrn;
  lrn.name = "LRN";
  lrn.infer = same_as_input(0);
  lrn.make_kernel = make_lrn;
  r.add(lrn);

  OpDef dropout;
  dropout.name = "Dropout";
  dropout.max_inputs = 3;
  dropout.deterministic = false;
  dropout.infer = [](const InferContext& ctx) -> std::vector<TensorType> {
    TensorType mask = ctx.input(0);
    mask.dtype = at::kBool;
    return {ctx.input(0), mask};
  };
  dropout.make_kernel = make_dropout;
  r.add(dropout);
}

}  // namespace shrink::ops
