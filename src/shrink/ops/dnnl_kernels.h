// Inference kernels on oneDNN primitives (the library LibTorch links for its mkldnn
// kernels), for the shapes where ATen's CPU kernels are slow. Each primitive is created
// once per shape (and layout) and cached; operands that need a gradient, or are not float32
// CPU tensors, go to ATen, so training is unchanged.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <vector>

namespace shrink::ops {

// softmax (or log-softmax) of x along `axis` (already normalised to [0, x.dim())).
// ATen's softmax over a short last axis, as in attention (64x4x50x50: 0.68 ms on 2
// threads), is 2.7x slower than oneDNN's AVX-512 kernel (0.25 ms).
at::Tensor softmax_inference(const at::Tensor& x, int64_t axis, bool log);

// numpy matmul of operands of which at least one has 3 or more dimensions (the batch
// dimensions broadcast): attention's Q K^T and A V. One oneDNN matmul primitive over the
// whole batch; each matrix row- or column-major (K^T as a transposed view needs no copy).
// at::matmul sends these to a loop of small products: 256 products of 50x16x50 took
// 0.70 ms, the primitive 0.08-0.14 ms.
at::Tensor batched_matmul_inference(const at::Tensor& a, const at::Tensor& b);

// A per-tensor quint8 tensor back to float, (q - zero point) * scale, in one oneDNN reorder
// pass keeping q's strides (ATen's dequantize took 358 us for 64x50x64, this 1/10 of it).
// Other quantized tensors go to ATen's dequantize.
at::Tensor dequantize_inference(const at::Tensor& q);

// y = x W^T + b with int8 weights and x quantized per call as ONNX's DynamicQuantizeLinear
// does (uint8, scale = (max(x, 0) - min(x, 0)) / 255, zero point round(-min / scale)): one
// oneDNN int8 matmul primitive (u8 x s8 -> f32 on VNNI, the source zero point and the
// per-channel output scales given at run time, the bias added after scaling) per row
// count, weights reordered once into the primitive's layout. PyTorch's apply_dynamic (its
// oneDNN engine) spends ~130 us a call on bookkeeping: 147 us for 400x64x64 against 22 us
// here, 1.67 ms for 1024x768x768 against 0.93 ms.
// per_token: x quantized per row instead (int8 symmetric, scale max(max|x_row|, 1e-12) /
// 127, as `quantize --mode dynamic --per-token` writes it): the reorder takes one scale per
// row and the s8 x s8 matmul multiplies each output row by its scale in a binary post-op.
// One object per graph node; thread-safe. w: int8 [N, K]; w_scale: [1] or [N]; bias: [N]
// or undefined; x: float [..., K].
class DynamicInt8Linear {
 public:
  explicit DynamicInt8Linear(bool per_token = false);
  ~DynamicInt8Linear();
  at::Tensor operator()(const at::Tensor& x, const at::Tensor& w, const at::Tensor& w_scale, const at::Tensor& bias);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace shrink::ops

namespace shrink::ops {

// One step after a fused convolution's product, in order: an element-wise function or
// the sum of a residual (oneDNN's post-ops).
struct ConvPostOp {
  enum Kind { Relu, Clip, HardSwish, Silu, Sigmoid, Sum } kind;
  float lo = 0, hi = 0;  // Clip's bounds
};

// A 2-D convolution (+ bias) with its activation and residual Add fused, as one oneDNN
// primitive on channels-last (NHWC) activations: the output is a channels-last tensor, so
// a chain of convolutions never converts layouts (ATen's ops take channels-last tensors
// as they are); the weight is reordered once into the primitive's blocked layout. One
// primitive per input shape (a few kept). One object per graph node; thread-safe.
// x: float [N, C, H, W]; w: [OC, C/groups, KH, KW]; bias: [OC] or undefined; residual:
// [N, OC, OH, OW] when the post-ops hold a Sum, else undefined. Gradients and other
// element types go to ATen.
class FusedConv {
 public:
  FusedConv(std::vector<int64_t> strides, std::vector<int64_t> dilations, std::vector<int64_t> pads_begin,
            std::vector<int64_t> pads_end, int64_t groups, std::vector<ConvPostOp> post);
  ~FusedConv();
  at::Tensor operator()(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias, const at::Tensor& residual);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// The same computation on ATen (gradients; the reference in tests).
at::Tensor fused_conv_reference(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias, const at::Tensor& residual,
                                const std::vector<int64_t>& strides, const std::vector<int64_t>& dilations,
                                const std::vector<int64_t>& pads_begin, const std::vector<int64_t>& pads_end, int64_t groups,
                                const std::vector<ConvPostOp>& post);

}  // namespace shrink::ops

namespace shrink::ops {

// 2-D max pooling (no dilation, floor mode) of a float [N, C, H, W] tensor as one oneDNN
// primitive in the tensor's own layout (channels-last stays channels-last; padding never
// wins, as ONNX specifies). ATen's channels-last max_pool2d took 6.3 ms for ResNet-50's
// 8x64x112x112 pool on 2 threads. Gradients and other types go to at::max_pool2d.
at::Tensor max_pool2d_inference(const at::Tensor& x, const std::vector<int64_t>& kernel,
                                const std::vector<int64_t>& strides, const std::vector<int64_t>& pads_begin,
                                const std::vector<int64_t>& pads_end);

}  // namespace shrink::ops
