#include "shrink/ops/max_pool2d.h"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace shrink::ops {
namespace {

// ATen's update rule: the next value in scan order replaces the running maximum when it
// is larger or NaN.
template <typename T>
inline bool replaces(T v, T best) {
  return v > best || v != v;
}

// One output row of one plane, scalar: out[j] = max of the 2x2 window at columns 2j, 2j+1
// of rows r0 and r1 (r0 at input row `top`), idx[j] its flat index in the plane.
template <typename T>
void pool_row_scalar(const T* r0, const T* r1, int64_t top, int64_t w, int64_t from, int64_t to, T* out,
                     int64_t* idx) {
  for (int64_t j = from; j < to; ++j) {
    T best = r0[2 * j];
    int64_t which = 0;
    if (replaces(r0[2 * j + 1], best)) best = r0[2 * j + 1], which = 1;
    if (replaces(r1[2 * j], best)) best = r1[2 * j], which = 2;
    if (replaces(r1[2 * j + 1], best)) best = r1[2 * j + 1], which = 3;
    out[j] = best;
    if (idx) idx[j] = (top + which / 2) * w + 2 * j + which % 2;
  }
}

// The same for float, four outputs at a time with SSE2 compares and selects: no branch
// depends on the data (ATen's loop branches on every comparison, and on ReLU outputs
// those branches are unpredictable).
int64_t pool_row_sse(const float* r0, const float* r1, int64_t top, int64_t w, int64_t ow, float* out,
                     int64_t* idx) {
#if defined(__SSE2__)
  int64_t j = 0;
  const __m128i base_step = _mm_set_epi32(6, 4, 2, 0);
  for (; j + 4 <= ow; j += 4) {
    __m128 lo0 = _mm_loadu_ps(r0 + 2 * j), hi0 = _mm_loadu_ps(r0 + 2 * j + 4);
    __m128 lo1 = _mm_loadu_ps(r1 + 2 * j), hi1 = _mm_loadu_ps(r1 + 2 * j + 4);
    __m128 a = _mm_shuffle_ps(lo0, hi0, _MM_SHUFFLE(2, 0, 2, 0));  // even columns of row 0
    __m128 b = _mm_shuffle_ps(lo0, hi0, _MM_SHUFFLE(3, 1, 3, 1));  // odd columns of row 0
    __m128 c = _mm_shuffle_ps(lo1, hi1, _MM_SHUFFLE(2, 0, 2, 0));
    __m128 d = _mm_shuffle_ps(lo1, hi1, _MM_SHUFFLE(3, 1, 3, 1));
    __m128 best = a;
    __m128i which = _mm_setzero_si128();
    auto step = [&](__m128 v, int k) {
      __m128 take = _mm_or_ps(_mm_cmpgt_ps(v, best), _mm_cmpunord_ps(v, v));
      best = _mm_or_ps(_mm_and_ps(take, v), _mm_andnot_ps(take, best));
      __m128i t = _mm_castps_si128(take);
      which = _mm_or_si128(_mm_and_si128(t, _mm_set1_epi32(k)), _mm_andnot_si128(t, which));
    };
    step(b, 1);
    step(c, 2);
    step(d, 3);
    _mm_storeu_ps(out + j, best);
    if (idx) {
      // (top + which / 2) * w + 2 * j + which % 2, in 32 bits (a plane's index fits), then widened.
      __m128i dy = _mm_srli_epi32(which, 1), dx = _mm_and_si128(which, _mm_set1_epi32(1));
      __m128i row = _mm_add_epi32(_mm_set1_epi32(static_cast<int>(top)), dy);
      // row * w: SSE2 has no 32-bit low multiply; w fits 16 bits here, so use madd on 16-bit halves.
      __m128i row_w = _mm_madd_epi16(row, _mm_set1_epi32(static_cast<int>(w)));
      __m128i col = _mm_add_epi32(_mm_add_epi32(_mm_set1_epi32(static_cast<int>(2 * j)), base_step), dx);
      __m128i flat = _mm_add_epi32(row_w, col);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(idx + j), _mm_unpacklo_epi32(flat, _mm_setzero_si128()));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(idx + j + 2), _mm_unpackhi_epi32(flat, _mm_setzero_si128()));
    }
  }
  return j;
#else
  return 0;
#endif
}

template <typename T>
std::pair<at::Tensor, at::Tensor> pool(const at::Tensor& input, bool with_indices) {
  at::Tensor x = input.contiguous();
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), oh = h / 2, ow = w / 2;
  at::Tensor out = at::empty({n, c, oh, ow}, x.options());
  at::Tensor idx = with_indices ? at::empty({n, c, oh, ow}, x.options().dtype(at::kLong)) : at::Tensor();
  const T* src = x.data_ptr<T>();
  T* dst = out.data_ptr<T>();
  int64_t* ind = with_indices ? idx.data_ptr<int64_t>() : nullptr;
  // The SSE2 path computes row * w with 16-bit multiplies.
  const bool sse = std::is_same_v<T, float> && h < 32768 && w < 32768;
  const int64_t rows = n * c * oh;
  at::parallel_for(0, rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, ow)), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t plane = r / oh, i = r % oh;
      const T* r0 = src + plane * h * w + 2 * i * w;
      T* o = dst + r * ow;
      int64_t* ix = ind ? ind + r * ow : nullptr;
      int64_t done = 0;
      if constexpr (std::is_same_v<T, float>)
        if (sse) done = pool_row_sse(r0, r0 + w, 2 * i, w, ow, o, ix);
      pool_row_scalar<T>(r0, r0 + w, 2 * i, w, done, ow, o, ix);
    }
  });
  return {out, idx};
}

std::pair<at::Tensor, at::Tensor> pool_any(const at::Tensor& x, bool with_indices) {
  return x.scalar_type() == at::kFloat ? pool<float>(x, with_indices) : pool<double>(x, with_indices);
}

struct MaxPool2x2 : public torch::autograd::Function<MaxPool2x2> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x) {
    auto [out, index] = pool_any(x, true);
    ctx->save_for_backward({x, index});
    ctx->mark_non_differentiable({index});
    return {out, index};
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    return {at::max_pool2d_with_indices_backward(grads[0], saved[0], {2, 2}, {2, 2}, {0, 0}, {1, 1}, false, saved[1])};
  }
};

// dst[j] = max(a[j], b[j]) for n bytes.
void max_bytes(const uint8_t* a, const uint8_t* b, uint8_t* dst, int64_t n) {
  int64_t j = 0;
#if defined(__SSE2__)
  for (; j + 16 <= n; j += 16)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + j),
                     _mm_max_epu8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + j)),
                                  _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + j))));
#endif
  for (; j < n; ++j) dst[j] = std::max(a[j], b[j]);
}

}  // namespace

bool is_2x2_stride2_window(const std::vector<int64_t>& kernel, const std::vector<int64_t>& strides,
                           const std::vector<int64_t>& pads, const std::vector<int64_t>& dilations, bool ceil_mode,
                           int64_t h, int64_t w) {
  const std::vector<int64_t> two{2, 2}, one{1, 1};
  for (int64_t p : pads)
    if (p != 0) return false;
  return kernel == two && strides == two && dilations == one && (!ceil_mode || (h % 2 == 0 && w % 2 == 0));
}

bool max_pool2d_2x2_uint8_applies(const at::Tensor& x) {
  return x.dim() == 4 && x.scalar_type() == at::kByte && x.device().is_cpu() && x.size(2) >= 2 && x.size(3) >= 2 &&
         x.numel() > 0 && (x.is_contiguous() || x.is_contiguous(at::MemoryFormat::ChannelsLast));
}

at::Tensor max_pool2d_2x2_uint8(const at::Tensor& x) {
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), oh = h / 2, ow = w / 2;
  const bool nhwc = !x.is_contiguous();
  at::Tensor out = at::empty({n, c, oh, ow}, x.options().memory_format(nhwc ? at::MemoryFormat::ChannelsLast
                                                                              : at::MemoryFormat::Contiguous));
  const uint8_t* src = x.data_ptr<uint8_t>();
  uint8_t* dst = out.data_ptr<uint8_t>();
  // A unit is one output row: of one plane (NCHW, `c` channels folded into the rows) or
  // of all channels (NHWC). `pixel` bytes per spatial position.
  const int64_t pixel = nhwc ? c : 1, rows = nhwc ? n * oh : n * c * oh;
  const int64_t in_row = w * pixel, out_row = ow * pixel;
  at::parallel_for(0, rows, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, out_row)), [&](int64_t begin, int64_t end) {
    std::vector<uint8_t> pair(2 * out_row);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t image = r / oh, i = r % oh;  // image: a batch index (NHWC) or a plane (NCHW)
      const uint8_t* r0 = src + image * h * in_row + 2 * i * in_row;
      max_bytes(r0, r0 + in_row, pair.data(), 2 * out_row);  // down the two rows
      uint8_t* o = dst + image * oh * out_row + i * out_row;
      for (int64_t j = 0; j < ow; ++j)  // then across neighbouring positions
        max_bytes(pair.data() + 2 * j * pixel, pair.data() + (2 * j + 1) * pixel, o + j * pixel, pixel);
    }
  });
  return out;
}

bool max_pool2d_2x2_applies(const at::Tensor& x) {
  // Channels-last inputs (FusedConv's outputs) go to ATen's pooling, which keeps the layout.
  return x.dim() == 4 && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble) && x.device().is_cpu() &&
         x.layout() == at::kStrided && x.size(2) >= 2 && x.size(3) >= 2 && x.numel() > 0 &&
         (x.is_contiguous() || !x.is_contiguous(at::MemoryFormat::ChannelsLast));
}

std::pair<at::Tensor, at::Tensor> max_pool2d_2x2(const at::Tensor& x, bool with_indices) {
  if (at::GradMode::is_enabled() && x.requires_grad()) {
    torch::autograd::variable_list r = MaxPool2x2::apply(x);
    return {r[0], with_indices ? r[1] : at::Tensor()};
  }
  return pool_any(x, with_indices);
}

}  // namespace shrink::ops
