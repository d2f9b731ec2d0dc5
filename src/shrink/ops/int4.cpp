#include "shrink/ops/int4.h"

#include <ATen/Parallel.h>
#include <immintrin.h>

// GCC 12's avx512fintrin.h initialises its undefined-value helper from itself, which
// -Wmaybe-uninitialized reports at every inlined conversion.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <vector>

#include "shrink/core/error.h"
#include "shrink/ops/sgemm.h"

namespace shrink::ops {
namespace {

constexpr int64_t kLanes = 16;            // floats per AVX-512 register
constexpr int64_t kBlock = 4 * kLanes;    // output columns one task computes at a time

// Rows [0, R) of y[:, n0 : n0 + 64) (masked past N) from column block `packed` (the
// block's codes, [groups, half, 64] bytes, contiguous: one stream) and its scales
// [groups, 64]: for each group g,
//   y += scale[g] * (sum_j x[k] q[k] - 8 sum_j x[k])      (k over the group's rows)
// with the codes unpacked in registers; the low and high nibbles accumulate apart, so
// each row has eight independent chains.
template <int R>
__attribute__((target("avx512f,avx512bw,avx512vl,fma"))) void int4_block(
    const float* x, int64_t ldx, const float* xsum, const uint8_t* packed, const float* scale, const float* bias,
    int64_t groups, int64_t half, int64_t n, int64_t n0, float* y, int64_t ldy) {
  __mmask16 mask[4];
  for (int c = 0; c < 4; ++c) {
    int64_t left = n - (n0 + c * kLanes);
    mask[c] = left >= kLanes ? __mmask16(0xFFFF) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
  }
  __m512 acc[R][4];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < 4; ++c)
      acc[r][c] = bias ? _mm512_maskz_loadu_ps(mask[c], bias + n0 + c * kLanes) : _mm512_setzero_ps();
  const __m512i low_bits = _mm512_set1_epi32(15);
  const int64_t group = 2 * half;
  for (int64_t g = 0; g < groups; ++g) {
    __m512 lo[R][4], hi[R][4];
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < 4; ++c) lo[r][c] = hi[r][c] = _mm512_setzero_ps();
    const uint8_t* pg = packed + g * half * kBlock;
    for (int64_t j = 0; j < half; ++j) {
      const uint8_t* row = pg + j * kBlock;
      __m512 wl[4], wh[4];
      for (int c = 0; c < 4; ++c) {
        __m512i codes = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + c * kLanes)));
        wl[c] = _mm512_cvtepi32_ps(_mm512_and_si512(codes, low_bits));
        wh[c] = _mm512_cvtepi32_ps(_mm512_srli_epi32(codes, 4));
      }
      for (int r = 0; r < R; ++r) {
        const float* xr = x + r * ldx + g * group + j;
        __m512 a = _mm512_set1_ps(xr[0]), b = _mm512_set1_ps(xr[half]);
        for (int c = 0; c < 4; ++c) {
          lo[r][c] = _mm512_fmadd_ps(a, wl[c], lo[r][c]);
          hi[r][c] = _mm512_fmadd_ps(b, wh[c], hi[r][c]);
        }
      }
    }
    const float* sg = scale + g * kBlock;
    for (int c = 0; c < 4; ++c) {
      __m512 s = _mm512_loadu_ps(sg + c * kLanes);
      for (int r = 0; r < R; ++r) {
        __m512 dot = _mm512_sub_ps(_mm512_add_ps(lo[r][c], hi[r][c]), _mm512_set1_ps(8.0f * xsum[r * groups + g]));
        acc[r][c] = _mm512_fmadd_ps(s, dot, acc[r][c]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < 4; ++c) _mm512_mask_storeu_ps(y + r * ldy + n0 + c * kLanes, mask[c], acc[r][c]);
}

bool has_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl");
  return yes;
}

}  // namespace

at::Tensor int4_unpack(const at::Tensor& packed, const at::Tensor& scale) {
  const int64_t groups = packed.size(0), half = packed.size(1), n = packed.size(2);
  at::Tensor wide = packed.to(at::kInt);
  at::Tensor codes = at::cat({wide.bitwise_and(15), wide.bitwise_right_shift(4)}, 1);  // [K/G, G, N]
  return codes.to(at::kFloat).sub_(8.0f).mul_(scale.to(at::kFloat)).reshape({groups * 2 * half, n});
}

Int4Blocks int4_blocks(const at::Tensor& packed, const at::Tensor& scale) {
  const int64_t groups = packed.size(0), half = packed.size(1), n = packed.size(2);
  const int64_t blocks = (n + kBlock - 1) / kBlock, padded = blocks * kBlock;
  // [groups, half, N] -> [blocks, groups, half, 64], zero past N (code 0 and scale 0 add 0).
  at::Tensor codes = at::constant_pad_nd(packed, {0, padded - n});
  at::Tensor s = at::constant_pad_nd(scale.to(at::kFloat).reshape({groups, n}), {0, padded - n});
  return {codes.view({groups, half, blocks, kBlock}).permute({2, 0, 1, 3}).contiguous(),
          s.view({groups, blocks, kBlock}).permute({1, 0, 2}).contiguous()};
}

at::Tensor int4_linear(const at::Tensor& x_in, const at::Tensor& packed_in, const at::Tensor& scale_in,
                       const at::Tensor& bias_in, const Int4Blocks* blocks_in) {
  SHRINK_CHECK(packed_in.dim() == 3 && packed_in.scalar_type() == at::kByte, "int4 weight: expected uint8 [K/G, G/2, N], got ",
               packed_in.sizes());
  const int64_t groups = packed_in.size(0), half = packed_in.size(1), n = packed_in.size(2), k = groups * 2 * half;
  SHRINK_CHECK(scale_in.numel() == groups * n, "int4 scale: expected ", groups, " x ", n, " values, got ", scale_in.sizes());
  SHRINK_CHECK(x_in.dim() >= 1 && x_in.size(-1) == k, "int4 linear: input's last dimension must be ", k, ", got ",
               x_in.sizes());
  std::vector<int64_t> out_shape(x_in.sizes().begin(), x_in.sizes().end());
  out_shape.back() = n;
  at::Tensor x = x_in.to(at::kFloat).reshape({-1, k}).contiguous();
  at::Tensor bias = bias_in.defined() ? bias_in.to(at::kFloat).reshape({n}).contiguous() : at::Tensor();
  const int64_t m = x.size(0);
  if (m > kInt4KernelRows || !has_avx512() || (at::GradMode::is_enabled() && x.requires_grad())) {
    at::Tensor w = blocks_in && blocks_in->dense.defined() ? blocks_in->dense : int4_unpack(packed_in, scale_in);
    at::Tensor y = dense_mm(x, w);
    if (bias.defined()) y = y + bias;
    return y.view(out_shape);
  }
  const Int4Blocks blocked = blocks_in ? *blocks_in : int4_blocks(packed_in, scale_in);
  at::Tensor xsum = x.view({m, groups, 2 * half}).sum(2).contiguous();  // [m, K/G]
  at::Tensor y = at::empty({m, n}, x.options());
  const float* xp = x.data_ptr<float>();
  const float* xs = xsum.data_ptr<float>();
  const uint8_t* pp = blocked.codes.data_ptr<uint8_t>();
  const float* sp = blocked.scales.data_ptr<float>();
  const float* bp = bias.defined() ? bias.data_ptr<float>() : nullptr;
  float* yp = y.data_ptr<float>();
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      int64_t r = 0;
      const uint8_t* codes = pp + b * groups * half * kBlock;
      const float* scales = sp + b * groups * kBlock;
      for (; r + 2 <= m; r += 2)
        int4_block<2>(xp + r * k, k, xs + r * groups, codes, scales, bp, groups, half, n, b * kBlock, yp + r * n, n);
      if (r < m) int4_block<1>(xp + r * k, k, xs + r * groups, codes, scales, bp, groups, half, n, b * kBlock, yp + r * n, n);
    }
  });
  return y.view(out_shape);
}

}  // namespace shrink::ops
