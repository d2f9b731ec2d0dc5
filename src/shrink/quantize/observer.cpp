#include "shrink/quantize/observer.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "shrink/core/error.h"
#include "shrink/ops/quant.h"

namespace shrink::quantize {

ObserverOptions observer_options(const std::string& kind, at::ScalarType dtype, bool symmetric, int64_t axis) {
  ObserverOptions o;
  o.kind = kind;
  o.dtype = dtype;
  o.symmetric = symmetric;
  o.axis = axis;
  SHRINK_CHECK(dtype == at::kByte || dtype == at::kChar, "quantized type must be uint8 or int8");
  o.qmin = dtype == at::kByte ? 0 : -128;
  o.qmax = dtype == at::kByte ? 255 : 127;
  return o;
}

QParams qparams_from_range(const at::Tensor& min, const at::Tensor& max, const ObserverOptions& o) {
  at::Tensor lo = at::minimum(min.to(at::kDouble), at::zeros_like(min, at::kDouble));
  at::Tensor hi = at::maximum(max.to(at::kDouble), at::zeros_like(max, at::kDouble));
  const double eps = std::numeric_limits<float>::epsilon();
  const double levels = static_cast<double>(o.qmax - o.qmin);
  QParams p;
  p.axis = o.axis;
  p.dtype = o.dtype;
  at::Tensor scale, zp;
  if (o.symmetric) {
    scale = at::clamp_min(at::maximum(-lo, hi) / (levels / 2), eps);
    int64_t z = o.dtype == at::kByte ? (o.qmin + o.qmax + 1) / 2 : 0;
    zp = at::full(scale.sizes(), static_cast<double>(z), at::kDouble);
  } else {
    scale = at::clamp_min((hi - lo) / levels, eps);
    // The scale is rounded to float32 first: the zero point must match the stored scale.
    scale = scale.to(at::kFloat).to(at::kDouble);
    zp = at::clamp(static_cast<double>(o.qmin) - at::round(lo / scale), static_cast<double>(o.qmin),
                   static_cast<double>(o.qmax));
  }
  p.scale = scale.to(at::kFloat);
  p.zero_point = zp.to(o.dtype);
  return p;
}

void Observer::observe(const at::Tensor& x, const std::string& name) {
  if (x.numel() == 0) return;
  at::Tensor d = x.detach().to(at::kDouble);
  SHRINK_CHECK(at::isfinite(d).all().item<bool>(), "quantize: value '", name,
               "' has NaN or Inf in calibration batch ", batches_ + 1, "; its quantization range is undefined");
  if (o_.axis >= 0)
    SHRINK_CHECK(o_.axis < d.dim(), "quantize: value '", name, "' has rank ", d.dim(), ", no axis ", o_.axis,
                 " for per-channel parameters");
  update(d);
  ++batches_;
}

QParams Observer::qparams(const std::string& name) const {
  SHRINK_CHECK(!empty(), "quantize: the observer of '", name, "' saw no data (calibrate with at least one batch)");
  auto [lo, hi] = range();
  return qparams_from_range(lo, hi, o_);
}

namespace {

// Per-channel (or whole-tensor) min and max of x.
std::pair<at::Tensor, at::Tensor> min_max(const at::Tensor& x, int64_t axis) {
  if (axis < 0) return {x.min(), x.max()};
  at::Tensor flat = x.movedim(axis, 0).reshape({x.size(axis), -1});
  return {std::get<0>(flat.min(1)), std::get<0>(flat.max(1))};
}

class MinMaxObserver : public Observer {
 public:
  explicit MinMaxObserver(ObserverOptions o) : Observer(std::move(o)) {}
  std::pair<at::Tensor, at::Tensor> range() const override { return {lo_, hi_}; }

 protected:
  void update(const at::Tensor& x) override {
    auto [lo, hi] = min_max(x, o_.axis);
    if (!lo_.defined()) {
      lo_ = lo, hi_ = hi;
    } else if (o_.kind == "moving_average") {
      lo_ = lo_ + o_.averaging * (lo - lo_);
      hi_ = hi_ + o_.averaging * (hi - hi_);
    } else {
      lo_ = at::minimum(lo_, lo), hi_ = at::maximum(hi_, hi);
    }
  }
  at::Tensor lo_, hi_;
};

// A histogram over [lo, hi] that widens as batches arrive: the old counts are spread
// evenly over their bins and re-binned onto the wider range.
struct Histogram {
  at::Tensor counts;  // float64 [bins]
  double lo = 0, hi = 0;

  void add(const at::Tensor& x, int64_t bins) {
    double xlo = x.min().item<double>(), xhi = x.max().item<double>();
    if (!counts.defined()) {
      lo = xlo, hi = xhi;
      counts = at::zeros({bins}, at::kDouble);
    } else if (xlo < lo || xhi > hi) {
      rebin(std::min(lo, xlo), std::max(hi, xhi));
    }
    if (hi > lo) {
      counts += at::histc(x, bins, lo, hi);
    } else {
      counts[0] += static_cast<double>(x.numel());  // every value equal so far
    }
  }
  void rebin(double nlo, double nhi) {
    int64_t bins = counts.size(0);
    // Cumulative counts at the old edges, read at the new edges by linear interpolation.
    at::Tensor cdf = at::cat({at::zeros({1}, at::kDouble), counts.cumsum(0)});
    double total = cdf[bins].item<double>();
    at::Tensor edges = at::linspace(nlo, nhi, bins + 1, at::kDouble);
    at::Tensor pos = hi > lo ? (edges - lo) / ((hi - lo) / static_cast<double>(bins)) : (edges >= lo).to(at::kDouble) * bins;
    pos = pos.clamp(0, static_cast<double>(bins));
    at::Tensor left = pos.floor().clamp_max(static_cast<double>(bins - 1)).to(at::kLong);
    at::Tensor frac = pos - left.to(at::kDouble);
    at::Tensor at_edges = cdf.index_select(0, left) + frac * (cdf.index_select(0, left + 1) - cdf.index_select(0, left));
    at_edges[bins] = total;
    counts = at_edges.slice(0, 1) - at_edges.slice(0, 0, bins);
    lo = nlo, hi = nhi;
  }
  double width() const { return (hi - lo) / static_cast<double>(counts.size(0)); }
};

class HistogramObserver : public Observer {
 public:
  explicit HistogramObserver(ObserverOptions o) : Observer(std::move(o)) {
    SHRINK_CHECK(o_.axis < 0, "the ", o_.kind, " observer is per tensor; use minmax or mse per channel");
    SHRINK_CHECK(o_.bins >= 2 * (o_.qmax - o_.qmin + 1) || o_.kind == "percentile", "the ", o_.kind,
                 " observer needs at least ", 2 * (o_.qmax - o_.qmin + 1), " bins, got ", o_.bins);
  }
  std::pair<at::Tensor, at::Tensor> range() const override {
    double lo = hist_.lo, hi = hist_.hi;
    if (hi > lo) std::tie(lo, hi) = search();
    return {at::scalar_tensor(lo, at::kDouble), at::scalar_tensor(hi, at::kDouble)};
  }

 protected:
  void update(const at::Tensor& x) override {
    hist_.add(x, o_.bins);
    abs_.add(x.abs(), o_.bins);
  }
  std::pair<double, double> search() const {
    int64_t levels = o_.qmax - o_.qmin + 1;
    if (o_.kind == "l2") return l2_search(hist_.counts, hist_.lo, hist_.hi, levels);
    if (o_.kind == "entropy") {
      // |x| from 0: a histogram of |x| over [0, max|x|] (re-binned from its own range).
      Histogram from_zero = abs_;
      if (from_zero.lo > 0) from_zero.rebin(0, from_zero.hi);
      double t = from_zero.hi > 0 ? entropy_threshold(from_zero.counts, from_zero.hi, hist_.lo < 0 ? levels / 2 : levels)
                                  : 0;
      return {std::max(hist_.lo, -t), std::min(hist_.hi, t)};
    }
    if (o_.kind == "percentile") {
      at::Tensor cdf = hist_.counts.cumsum(0) / hist_.counts.sum();
      auto edge = [&](double q) {
        int64_t i = (cdf < q).sum().item<int64_t>();  // first bin reaching the quantile
        i = std::min<int64_t>(i, hist_.counts.size(0) - 1);
        double before = i > 0 ? cdf[i - 1].item<double>() : 0, in = hist_.counts[i].item<double>() / hist_.counts.sum().item<double>();
        double frac = in > 0 ? (q - before) / in : 0;
        return hist_.lo + (static_cast<double>(i) + frac) * hist_.width();
      };
      return {edge((100 - o_.percentile) / 100), edge(o_.percentile / 100)};
    }
    // mse: the clipping of [lo, hi] with the least squared error over the bin centres,
    // the two ends searched in turn (ratios 0.01 to 1 of each), twice.
    at::Tensor centres = hist_.lo + (at::arange(hist_.counts.size(0), at::kDouble) + 0.5) * hist_.width();
    auto error = [&](double lo, double hi) {
      QParams p = qparams_from_range(at::scalar_tensor(lo), at::scalar_tensor(hi), o_);
      at::Tensor s = p.scale.to(at::kDouble);
      at::Tensor back = ops::dequantize_linear(ops::quantize_linear(centres, s, p.zero_point, o_.dtype, 1), s, p.zero_point, 1);
      return (hist_.counts * (back - centres).pow(2)).sum().item<double>();
    };
    double lo = hist_.lo, hi = hist_.hi, best = error(lo, hi);
    for (int round = 0; round < 2; ++round) {
      for (int end = 0; end < 2; ++end) {
        double full = end ? hist_.hi : hist_.lo;
        for (int k = 99; k >= 1; --k) {
          double a = k / 100.0;
          double e = end ? error(lo, a * full) : error(a * full, hi);
          if (e < best) best = e, (end ? hi : lo) = a * full;
        }
      }
    }
    return {lo, hi};
  }
  Histogram hist_, abs_;
};

// mse on weights: per channel (or per tensor) the clipping ratio of [min, max] with the
// least squared error of the values themselves. Keeps the last tensor it saw (weights
// are observed once).
class MseObserver : public Observer {
 public:
  explicit MseObserver(ObserverOptions o) : Observer(std::move(o)) {}
  std::pair<at::Tensor, at::Tensor> range() const override {
    auto [lo, hi] = min_max(x_, o_.axis);
    at::Tensor flat = o_.axis < 0 ? x_.reshape({1, -1}) : x_.movedim(o_.axis, 0).reshape({x_.size(o_.axis), -1});
    at::Tensor best = at::full({flat.size(0)}, std::numeric_limits<double>::infinity(), at::kDouble);
    at::Tensor ratio = at::ones({flat.size(0)}, at::kDouble);
    ObserverOptions po = o_;
    po.axis = 0;
    for (int k = 100; k >= 1; --k) {
      double a = k / 100.0;
      QParams p = qparams_from_range((a * lo).reshape({-1}), (a * hi).reshape({-1}), po);
      at::Tensor s = p.scale.to(at::kDouble);
      at::Tensor back = ops::dequantize_linear(ops::quantize_linear(flat, s, p.zero_point, o_.dtype, 0), s, p.zero_point, 0);
      at::Tensor err = (back - flat).pow(2).sum(1);
      at::Tensor better = err < best;
      best = at::where(better, err, best);
      ratio = at::where(better, at::full_like(ratio, a), ratio);
    }
    if (o_.axis < 0) ratio = ratio.reshape({});
    return {lo * ratio, hi * ratio};
  }

 protected:
  void update(const at::Tensor& x) override { x_ = x; }
  at::Tensor x_;
};

}  // namespace

std::unique_ptr<Observer> make_observer(const ObserverOptions& o) {
  SHRINK_CHECK(o.qmin < o.qmax, "quantize: empty integer range [", o.qmin, ", ", o.qmax, "]");
  if (o.kind == "minmax" || o.kind == "moving_average") return std::unique_ptr<Observer>(new MinMaxObserver(o));
  if (o.kind == "mse" && o.axis >= 0) return std::unique_ptr<Observer>(new MseObserver(o));
  if (o.kind == "entropy" || o.kind == "l2" || o.kind == "percentile" || o.kind == "mse")
    return std::unique_ptr<Observer>(new HistogramObserver(o));
  fail("--observer: '", o.kind, "' is not minmax, moving_average, entropy, l2, percentile or mse");
}

std::pair<double, double> l2_search(const at::Tensor& histogram, double min, double max, int64_t levels) {
  std::vector<double> h(histogram.numel());
  at::Tensor hc = histogram.to(at::kDouble).contiguous();
  std::copy(hc.data_ptr<double>(), hc.data_ptr<double>() + hc.numel(), h.begin());
  const int64_t bins = static_cast<int64_t>(h.size());
  const double bin_width = (max - min) / static_cast<double>(bins);
  std::vector<double> csum(h.size());
  double total = 0;
  for (int64_t i = 0; i < bins; ++i) csum[i] = (total += h[i]);
  auto norm_of = [](double begin, double end, double density) { return density * (end * end * end - begin * begin * begin) / 3; };
  auto error = [&](int64_t start, int64_t end) {
    double dst = bin_width * static_cast<double>(end - start + 1) / static_cast<double>(levels);
    if (dst == 0.0) return 0.0;
    double sum = 0;
    for (int64_t i = 0; i < bins; ++i) {
      double begin = static_cast<double>(i - start) * bin_width, stop = begin + bin_width;
      double b = std::clamp(std::floor(begin / dst), 0.0, static_cast<double>(levels - 1));
      double e = std::clamp(std::floor(stop / dst), 0.0, static_cast<double>(levels - 1));
      double density = h[i] / bin_width;
      sum += norm_of(begin - (b + 0.5) * dst, dst / 2, density);
      sum += (e - b - 1) * norm_of(-dst / 2, dst / 2, density);
      sum += norm_of(-dst / 2, stop - (e * dst + dst / 2), density);
    }
    return sum;
  };
  const double step = 1e-5;
  double alpha = 0, beta = 1, best = std::numeric_limits<double>::infinity();
  int64_t start = 0, end = bins - 1;
  while (alpha < beta) {
    double next_alpha = alpha + step, next_beta = beta - step;
    int64_t l = start, r = end;
    while (l < end && csum[l] < next_alpha * total) ++l;
    while (r > start && csum[r] > next_beta * total) --r;
    int64_t next_start = start, next_end = end;
    if (l - start > end - r) {
      next_start = l;
      alpha = next_alpha;
    } else {
      next_end = r;
      beta = next_beta;
    }
    if (next_start == start && next_end == end) continue;
    double norm = error(next_start, next_end);
    if (norm > best) break;
    best = norm;
    start = next_start, end = next_end;
  }
  return {min + bin_width * static_cast<double>(start), min + bin_width * static_cast<double>(end + 1)};
}

double entropy_threshold(const at::Tensor& abs_histogram, double max_abs, int64_t levels) {
  at::Tensor hc = abs_histogram.to(at::kDouble).contiguous();
  std::vector<double> h(hc.data_ptr<double>(), hc.data_ptr<double>() + hc.numel());
  const int64_t bins = static_cast<int64_t>(h.size());
  const double width = max_abs / static_cast<double>(bins);
  if (bins <= levels) return max_abs;
  // Smoothing as in TensorRT/MXNet: empty bins get eps, taken evenly from the others.
  auto smooth = [](std::vector<double>& p) {
    const double eps = 1e-4;
    size_t zeros = std::count(p.begin(), p.end(), 0.0), nonzeros = p.size() - zeros;
    if (nonzeros == 0) return false;
    double take = eps * static_cast<double>(zeros) / static_cast<double>(nonzeros);
    for (double& v : p) v = v == 0 ? eps : v - take;
    return true;
  };
  double best = std::numeric_limits<double>::infinity();
  int64_t best_i = bins;
  for (int64_t i = levels; i <= bins; ++i) {
    std::vector<double> p(h.begin(), h.begin() + i);
    double outliers = 0;
    for (int64_t k = i; k < bins; ++k) outliers += h[k];
    p[i - 1] += outliers;
    // q: the first i bins merged into `levels` groups, each group's mass spread over its non-empty bins.
    std::vector<double> q(i, 0.0);
    int64_t merged = i / levels;
    for (int64_t j = 0; j < levels; ++j) {
      int64_t a = j * merged, b = j == levels - 1 ? i : a + merged;
      double sum = 0;
      int64_t nonzero = 0;
      for (int64_t k = a; k < b; ++k) sum += h[k], nonzero += h[k] != 0;
      for (int64_t k = a; k < b; ++k) q[k] = h[k] != 0 ? sum / static_cast<double>(nonzero) : 0;
    }
    double ps = 0, qs = 0;
    for (int64_t k = 0; k < i; ++k) ps += p[k], qs += q[k];
    if (ps <= 0 || qs <= 0) continue;
    for (int64_t k = 0; k < i; ++k) p[k] /= ps, q[k] /= qs;
    if (!smooth(p) || !smooth(q)) continue;
    double kl = 0;
    for (int64_t k = 0; k < i; ++k) kl += p[k] * std::log(p[k] / q[k]);
    if (kl < best) best = kl, best_i = i;
  }
  return static_cast<double>(best_i) * width;
}

}  // namespace shrink::quantize
