// Observers: watch the values a tensor takes (weights once, activations over calibration
// batches) and turn their range into quantization parameters.
//   minmax          running min and max
//   moving_average  min and max as exponential moving averages of each batch's (c = 0.01)
//   entropy         histogram; the clipping threshold minimising the KL divergence between
//                   the clipped distribution and its quantized version (TensorRT's calibration)
//   l2              histogram; PyTorch's HistogramObserver search (the range that minimises
//                   the L2 quantization error, NormMinimization of Caffe2)
//   percentile      histogram; the range between two percentiles (default 0.01 and 99.99)
//   mse             the clipping ratio of [min, max] with the smallest squared quantization
//                   error (on the histogram for activations, per channel on weights)
// Parameters follow PyTorch's _calculate_qparams: the range is widened to include 0,
// symmetric schemes use max|x| / ((qmax - qmin) / 2) with zero point 0 (128 for uint8),
// affine ones (max - min) / (qmax - qmin); the scale is at least float32's epsilon, so
// constant and all-zero tensors get well-defined parameters. NaN or Inf is an error
// naming the observed value.
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>

namespace shrink::quantize {

struct QParams {
  at::Tensor scale;       // float32: scalar, or 1-D along `axis`
  at::Tensor zero_point;  // `dtype`: same shape as scale
  int64_t axis = -1;      // -1: per tensor
  at::ScalarType dtype = at::kByte;
  bool per_channel() const { return axis >= 0; }
};

struct ObserverOptions {
  std::string kind = "minmax";  // minmax, moving_average, entropy, l2, percentile, mse
  at::ScalarType dtype = at::kByte;  // kByte (uint8) or kChar (int8)
  bool symmetric = false;
  int64_t axis = -1;           // per channel along this axis (minmax, moving_average, mse)
  int64_t qmin = 0, qmax = 255;  // the integer range (e.g. -127..127 for restricted int8 weights)
  int64_t bins = 2048;          // histogram observers
  double percentile = 99.99;    // percentile: the upper percentile (the lower is 100 - p)
  double averaging = 0.01;      // moving_average: the constant c
};

// Options for a type and scheme with the full integer range of the type.
ObserverOptions observer_options(const std::string& kind, at::ScalarType dtype, bool symmetric, int64_t axis = -1);

class Observer {
 public:
  virtual ~Observer() = default;
  // `name` is the value observed, for error messages.
  void observe(const at::Tensor& x, const std::string& name);
  QParams qparams(const std::string& name) const;  // error if nothing was observed
  bool empty() const { return batches_ == 0; }
  const ObserverOptions& options() const { return o_; }
  // The [min, max] range the observer settled on (per channel: 1-D tensors).
  virtual std::pair<at::Tensor, at::Tensor> range() const = 0;

 protected:
  explicit Observer(ObserverOptions o) : o_(std::move(o)) {}
  virtual void update(const at::Tensor& x) = 0;  // x float64, finite
  ObserverOptions o_;
  int64_t batches_ = 0;
};

std::unique_ptr<Observer> make_observer(const ObserverOptions& o);

// Scale and zero point for a [min, max] range (scalars or per channel), as PyTorch's
// _calculate_qparams computes them.
QParams qparams_from_range(const at::Tensor& min, const at::Tensor& max, const ObserverOptions& o);

// PyTorch HistogramObserver's search over a histogram of `bins` bins on [min, max] for the
// range with the smallest L2 quantization error into 2^8 levels; returns {new_min, new_max}.
std::pair<double, double> l2_search(const at::Tensor& histogram, double min, double max, int64_t levels);
// TensorRT's entropy calibration on a histogram of |x| over [0, max_abs]: the threshold
// whose clipped distribution loses the least information (KL) quantized into `levels` bins.
double entropy_threshold(const at::Tensor& abs_histogram, double max_abs, int64_t levels);

}  // namespace shrink::quantize
