// Post-training int8 quantization of a graph into ONNX's QDQ form, the form ONNX Runtime
// fuses into int8 kernels:
//   weights      int8 initializers (symmetric, -127..127, per output channel or per tensor)
//                -> DequantizeLinear with an explicit axis (Conv 0, ConvTranspose 1, Gemm 0
//                with transB=1 else 1, MatMul 1)
//   bias         int32 initializer with scale s_input * s_weight, zero point 0 -> DequantizeLinear
//   activations  QuantizeLinear -> DequantizeLinear pairs (uint8, affine by default) on the
//                inputs of the quantized layers and on their outputs, taken after a
//                following Relu / Clip (Conv+ReLU fused as ONNX Runtime fuses it), and on
//                both inputs and the output of residual Adds; graph outputs stay float.
// Static mode observes the activations over calibration batches (BatchNorm folded first);
// qat mode does the same, then trains with fake quantization and converts back;
// weight-only mode stores Gemm/MatMul weights as int8 per channel, or as 4-bit values per
// group of `group_size` along the reduced axis, packed two per uint8 and unpacked by
// standard ops (Cast, Mod, Div, Concat, Sub, Mul, Reshape) that any runtime folds once at
// load; fp16 mode stores every float parameter as float16 behind a Cast. Both compute in
// float: they make the file smaller, not the arithmetic cheaper;
// dynamic mode quantizes weights only and leaves the activations to be quantized per batch
// (or per token) at run time.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "shrink/ir/graph.h"
#include "shrink/quantize/smooth.h"
#include "shrink/quantize/observer.h"

namespace shrink::quantize {

struct QuantizeOptions {
  std::string mode = "static";          // static, dynamic, qat, weight-only, fp16
  int bits = 8;                         // weight-only: 8 (per channel) or 4 (per group, packed two per byte)
  int64_t group_size = 32;              // weight-only 4-bit: weights per group along the reduced axis
  std::string observer = "minmax";      // activations: minmax, moving_average, entropy, l2, percentile, mse
  std::string weight_observer = "minmax";  // weights: minmax, mse
  bool per_channel = true;              // weights per output channel
  bool symmetric_activations = false;   // int8 symmetric activations instead of uint8 affine
  int64_t bins = 2048;
  double percentile = 99.99;
  std::vector<std::string> exclude_nodes;  // left in float
  std::vector<std::string> exclude_ops;    // op types left in float (e.g. Gemm)
  std::vector<std::string> ops = {"Conv", "Gemm", "MatMul"};  // op types quantized
  // qat: static quantization first (its ranges start the training), then the graph with
  // FakeQuant nodes (quantize/qat.h) is handed to `train` and converted back after.
  std::function<void(ir::Graph&)> train;
  bool learnable_scales = false;        // qat: LSQ
  // static/qat: shift each Conv/Gemm bias by -(W_q - W) E[x] (E[x]: the layer input's mean
  // per channel over the calibration batches), so the weights' rounding does not move the
  // mean of the output (Nagel et al. 2019, analytic bias correction; padding ignored).
  bool bias_correction = false;
  bool equalize = false;  // cross-layer equalization first (quantize/equalize.h)
  // SmoothQuant's migration strength alpha in [0, 1] (quantize/smooth.h), < 0: off. Static,
  // dynamic and qat modes; takes the activation ranges from the calibration batches.
  double smooth = -1;
  // dynamic: activations quantized per token (per row of the layer's input, int8 symmetric)
  // instead of per tensor (uint8 affine, DynamicQuantizeLinear).
  bool per_token = false;
};

struct LayerQuantization {
  std::string node, op;
  int64_t weight_bytes_before = 0, weight_bytes_after = 0;
  std::string skipped;  // why it stays float
};

struct QuantizeResult {
  std::vector<LayerQuantization> layers;
  std::vector<std::string> activations;  // values given a QDQ pair
  std::vector<std::pair<std::string, std::string>> equalized;  // layer pairs (equalize)
  std::vector<SmoothedNorm> smoothed;                          // LayerNorm groups (smooth)
  int64_t calibration_batches = 0;
};

// Quantizes `g` in place (after the inference passes: BatchNorm folded, constants folded).
// `calibration` yields the next batch of graph inputs (false when done); static mode needs
// at least one batch. Errors name the value, node or flag.
QuantizeResult quantize(ir::Graph& g, const QuantizeOptions& o,
                        const std::function<bool(std::vector<at::Tensor>&)>& calibration);

// Per-layer sensitivity and the fp32 fallback (static mode). Each quantized layer is left
// float alone in turn (everything else quantized) and the validation accuracy measured on
// shrink's int8 kernels; with max_drop >= 0 (points), the most sensitive layers are then
// kept float, one more at a time, until the quantized model is within max_drop of the float
// one (or every layer is float). `calibration` gives a fresh calibration source per run.
struct LayerSensitivity {
  std::string node, op;
  double accuracy = 0;  // with only this layer float
};
struct FallbackResult {
  double float_accuracy = 0, quantized_accuracy = 0, final_accuracy = 0;
  std::vector<LayerSensitivity> layers;  // most sensitive first
  std::vector<std::string> kept_float;   // the fallback's choice
};
using CalibrationSource = std::function<std::function<bool(std::vector<at::Tensor>&)>()>;
FallbackResult sensitivity_fallback(const ir::Graph& float_graph, const QuantizeOptions& o,
                                    const CalibrationSource& calibration,
                                    const std::function<double(const ir::Graph&)>& accuracy, double max_drop);

}  // namespace shrink::quantize
