#include "shrink/factorize/decompose.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "shrink/core/error.h"

namespace shrink::factorize {
namespace {

// Large matrices (both sides >= 512: VGG's 25088 x 4096 classifier) are decomposed
// through the eigenvalues of their Gram matrix on the smaller side, as TensorLy's
// symeig_svd does: 2 to 5 times faster than LAPACK's SVD here, and in double precision
// as accurate for the singular values a rank is chosen from and for the leading vectors
// (an error of eps * s_max^2 / s on a singular value s).
constexpr int64_t kGramSide = 512;

bool use_gram(const at::Tensor& m) { return std::min(m.size(0), m.size(1)) >= kGramSide; }

// Singular values, descending, and the matching left singular vectors of m (rows <= cols).
std::pair<at::Tensor, at::Tensor> gram_eigen(const at::Tensor& m) {
  auto [values, vectors] = at::linalg_eigh(m.mm(m.t()));  // ascending
  return {values.flip({0}).clamp_min(0).sqrt(), vectors.flip({1})};
}

// The r leading left singular vectors of m (columns), r <= rows. A wide matrix (a
// kernel's unfolding: 512 x 4608) goes through the eigenvectors of m m^T, which is
// several times faster than its SVD and, in double precision, as accurate for the
// leading subspace.
at::Tensor leading_vectors(const at::Tensor& m, int64_t r) {
  if (m.size(1) > 2 * m.size(0)) return gram_eigen(m).second.slice(1, 0, r).contiguous();
  auto [u, s, vh] = at::linalg_svd(m, false);
  return u.slice(1, 0, r).contiguous();
}

double relative_error(const at::Tensor& w, const at::Tensor& approx) {
  double norm = w.norm().item<double>();
  return norm > 0 ? (w - approx).norm().item<double>() / norm : 0.0;
}

}  // namespace

at::Tensor singular_values(const at::Tensor& m) { return at::linalg_svdvals(m.to(at::kDouble)); }

LowRank truncated_svd(const at::Tensor& m, int64_t rank) {
  SHRINK_CHECK(m.dim() == 2, "truncated_svd needs a matrix, got ", m.dim(), " dimensions");
  SHRINK_CHECK(rank >= 1 && rank <= std::min(m.size(0), m.size(1)), "rank ", rank, " is not in [1, ",
               std::min(m.size(0), m.size(1)), "]");
  at::Tensor d = m.to(at::kDouble);
  if (use_gram(d)) {
    // rows <= cols: d = U S V^T with U from d d^T and V^T = S^-1 U^T d (else on d^T).
    bool wide = d.size(0) <= d.size(1);
    at::Tensor x = wide ? d : d.t();
    auto [sv, u] = gram_eigen(x);
    at::Tensor ur = u.slice(1, 0, rank), sr = sv.slice(0, 0, rank);
    at::Tensor inv_root = at::where(sr > 0, sr.rsqrt(), at::zeros_like(sr));
    at::Tensor left = ur * sr.sqrt(), right = inv_root.unsqueeze(1) * ur.t().mm(x);  // x ~ left * right
    if (wide) return {left, right};
    return {right.t(), left.t()};
  }
  auto [u, s, vh] = at::linalg_svd(d, false);
  at::Tensor root = s.slice(0, 0, rank).sqrt();
  return {u.slice(1, 0, rank) * root, root.unsqueeze(1) * vh.slice(0, 0, rank)};
}

int64_t energy_rank(const at::Tensor& s, double energy) {
  SHRINK_CHECK(energy > 0.0 && energy <= 1.0, "--energy must be in (0, 1], got ", energy);
  at::Tensor sq = s.to(at::kDouble).pow(2);
  double total = sq.sum().item<double>();
  if (total <= 0) return 1;
  at::Tensor cum = sq.cumsum(0) / total;
  int64_t n = s.size(0);
  for (int64_t r = 0; r < n; ++r)
    if (cum[r].item<double>() >= energy - 1e-12) return r + 1;
  return n;
}

int64_t evbmf_rank(const at::Tensor& m_in) {
  at::Tensor m = m_in.to(at::kDouble);
  if (m.size(0) > m.size(1)) m = m.t();
  const double L = static_cast<double>(m.size(0)), M = static_cast<double>(m.size(1));
  const int64_t H = m.size(0);
  at::Tensor sv = (use_gram(m) ? gram_eigen(m).first : at::linalg_svdvals(m)).contiguous();
  std::vector<double> s(sv.data_ptr<double>(), sv.data_ptr<double>() + H);
  const double alpha = L / M;
  const double tau_bar = 2.5129 * std::sqrt(alpha);
  const double x_bar = (1 + tau_bar) * (1 + alpha / tau_bar);
  const double residual = 0.0;  // all L singular values are kept in the model (H = L)
  double sum_sq = 0;
  for (double v : s) sum_sq += v * v;
  if (sum_sq <= 0) return 0;
  // Bounds of the noise variance (Nakajima et al. 2013, Theorem 4 and its corollary).
  int64_t eh_ub = std::min<int64_t>(static_cast<int64_t>(std::ceil(L / (1 + alpha))) - 1, H) - 1;
  int64_t first = std::clamp<int64_t>(eh_ub + 1, 0, H - 1);
  double tail = 0;
  for (int64_t i = first; i < H; ++i) tail += s[i] * s[i];
  double upper = (sum_sq + residual) / (L * M);
  double lower = std::max(s[first] * s[first] / (M * x_bar), tail / static_cast<double>(H - first) / M);
  lower = std::max(lower, upper * 1e-12);
  if (lower >= upper) lower = upper * 0.999;
  auto objective = [&](double sigma2) {
    double total = 0;
    for (double v : s) {
      double x = v * v / (M * sigma2);
      if (x > x_bar) {
        double tau = 0.5 * (x - (1 + alpha) + std::sqrt(std::max(0.0, (x - (1 + alpha)) * (x - (1 + alpha)) - 4 * alpha)));
        total += x - tau + std::log((tau + 1) / x) + alpha * std::log(tau / alpha + 1);
      } else {
        total += x - std::log(x);
      }
    }
    return total + residual / (M * sigma2) + (L - static_cast<double>(H)) * std::log(sigma2);
  };
  // A scan in log space, then golden-section refinement around the best point.
  const int kGrid = 400;
  double lo = std::log(lower), hi = std::log(upper), best = lo, best_value = std::numeric_limits<double>::infinity();
  for (int i = 0; i <= kGrid; ++i) {
    double t = lo + (hi - lo) * i / kGrid;
    double v = objective(std::exp(t));
    if (v < best_value) best_value = v, best = t;
  }
  double a = std::max(lo, best - (hi - lo) / kGrid), b = std::min(hi, best + (hi - lo) / kGrid);
  const double phi = (std::sqrt(5.0) - 1) / 2;
  for (int i = 0; i < 100; ++i) {
    double c = b - phi * (b - a), d = a + phi * (b - a);
    if (objective(std::exp(c)) < objective(std::exp(d)))
      b = d;
    else
      a = c;
  }
  double sigma2 = std::exp((a + b) / 2);
  double threshold = std::sqrt(M * sigma2 * (1 + tau_bar) * (1 + alpha / tau_bar));
  return std::count_if(s.begin(), s.end(), [&](double v) { return v > threshold; });
}

at::Tensor unfold(const at::Tensor& t, int64_t mode) {
  std::vector<int64_t> order = {mode};
  for (int64_t d = 0; d < t.dim(); ++d)
    if (d != mode) order.push_back(d);
  return t.permute(order).reshape({t.size(mode), -1});
}

Tucker2 tucker2(const at::Tensor& w_in, int64_t r_out, int64_t r_in, int max_iterations, double tolerance) {
  SHRINK_CHECK(w_in.dim() == 4, "tucker2 needs a [N, C, kh, kw] kernel");
  at::Tensor w = w_in.to(at::kDouble);
  const int64_t n = w.size(0), c = w.size(1);
  SHRINK_CHECK(r_out >= 1 && r_out <= n && r_in >= 1 && r_in <= c, "Tucker ranks (", r_out, ", ", r_in,
               ") are not within [1, ", n, "] x [1, ", c, "]");
  // A mode's rank cannot exceed the product of the others' extents (one input channel
  // of a 3x3 kernel spans at most 9 output directions).
  const int64_t k = w.size(2) * w.size(3);
  r_out = std::min(r_out, r_in * k);
  r_in = std::min(r_in, r_out * k);
  const bool fixed_out = r_out == n, fixed_in = r_in == c;  // identity factors: nothing to fit
  Tucker2 t;
  t.u_out = fixed_out ? at::eye(n, at::kDouble) : leading_vectors(unfold(w, 0), r_out);
  t.u_in = fixed_in ? at::eye(c, at::kDouble) : leading_vectors(unfold(w, 1), r_in);
  auto core_of = [&] { return at::einsum("ncij,nr,cs->rsij", {w, t.u_out, t.u_in}); };
  const double norm2 = w.pow(2).sum().item<double>();
  auto error_of = [&](const at::Tensor& core) {
    // The factors are orthonormal: ||W - approx||^2 = ||W||^2 - ||core||^2.
    return norm2 > 0 ? std::sqrt(std::max(0.0, norm2 - core.pow(2).sum().item<double>()) / norm2) : 0.0;
  };
  at::Tensor core = core_of();
  t.error = error_of(core);
  // HOOI: each factor in turn the leading subspace of W projected on the other.
  for (int it = 0; it < max_iterations && !fixed_out && !fixed_in; ++it) {  // one fixed side: HOSVD is optimal
    t.u_out = leading_vectors(unfold(at::einsum("ncij,cs->nsij", {w, t.u_in}), 0), r_out);
    at::Tensor z = at::einsum("ncij,nr->rcij", {w, t.u_out});  // W x0 u_out^T
    t.u_in = leading_vectors(unfold(z, 1), r_in);
    core = at::einsum("rcij,cs->rsij", {z, t.u_in});
    double e = error_of(core);
    t.iterations = it + 1;
    bool done = t.error - e < tolerance;
    t.error = e;
    if (done) break;
  }
  t.core = core;
  return t;
}

at::Tensor reconstruct(const Tucker2& t) { return at::einsum("rsij,nr,cs->ncij", {t.core, t.u_out, t.u_in}); }

Cp cp_als(const at::Tensor& w_in, int64_t rank, int max_iterations, double tolerance, uint64_t seed) {
  SHRINK_CHECK(w_in.dim() == 4, "cp_als needs a [N, C, kh, kw] kernel");
  SHRINK_CHECK(rank >= 1, "CP rank must be at least 1, got ", rank);
  at::Tensor w = w_in.to(at::kDouble);
  at::Generator gen = at::detail::createCPUGenerator(seed);
  // SVD initialisation: each factor the leading left singular vectors of its unfolding,
  // random columns beyond the unfolding's rank.
  std::vector<at::Tensor> f(4);
  for (int64_t m = 0; m < 4; ++m) {
    int64_t d = w.size(m), k = std::min(d, rank);
    at::Tensor lead = leading_vectors(unfold(w, m), k);
    f[m] = k == rank ? lead : at::cat({lead, at::randn({d, rank - k}, gen, at::kDouble) / std::sqrt(double(d))}, 1);
  }
  Cp cp;
  auto recon = [&] { return at::einsum("nr,cr,ir,jr->ncij", {f[0], f[1], f[2], f[3]}); };
  const char* mttkrp[4] = {"ncij,cr,ir,jr->nr", "ncij,nr,ir,jr->cr", "ncij,nr,cr,jr->ir", "ncij,nr,cr,ir->jr"};
  double previous = std::numeric_limits<double>::infinity();
  for (int it = 0; it < max_iterations; ++it) {
    for (int m = 0; m < 4; ++m) {
      std::vector<at::Tensor> others;
      at::Tensor gram = at::ones({rank, rank}, at::kDouble);
      for (int k = 0; k < 4; ++k)
        if (k != m) others.push_back(f[k]), gram = gram * f[k].t().mm(f[k]);
      at::Tensor rhs = at::einsum(mttkrp[m], {w, others[0], others[1], others[2]});
      f[m] = rhs.mm(at::linalg_pinv(gram));
    }
    // Unit columns in the spatial and input factors, the scale carried by the output factor.
    for (int m = 1; m < 4; ++m) {
      at::Tensor norms = f[m].norm(2, {0}).clamp_min(1e-300);
      f[m] = f[m] / norms;
      f[0] = f[0] * norms;
    }
    double e = relative_error(w, recon());
    cp.iterations = it + 1;
    cp.error = e;
    if (!std::isfinite(e)) break;
    if (std::abs(previous - e) < tolerance) {
      cp.converged = true;
      break;
    }
    previous = e;
  }
  cp.out = f[0], cp.in = f[1], cp.h = f[2], cp.w = f[3];
  return cp;
}

at::Tensor reconstruct(const Cp& cp) { return at::einsum("nr,cr,ir,jr->ncij", {cp.out, cp.in, cp.h, cp.w}); }

}  // namespace shrink::factorize
