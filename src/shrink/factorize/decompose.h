// Low-rank decompositions of weight tensors, in double precision: truncated SVD of a
// matrix, Tucker-2 of a convolution kernel (HOSVD refined by HOOI, Kim et al. 2016), CP
// of a convolution kernel (ALS with SVD initialisation, Lebedev et al. 2015), and rank
// estimates (retained energy, EVBMF of Nakajima et al. 2013).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace shrink::factorize {

// M ~ a * b with a [rows, r] and b [r, cols], the singular values split evenly
// (a = U sqrt(S), b = sqrt(S) V^T).
struct LowRank {
  at::Tensor a, b;
};
LowRank truncated_svd(const at::Tensor& m, int64_t rank);

// Singular values of a matrix, descending (double).
at::Tensor singular_values(const at::Tensor& m);

// The smallest rank whose singular values keep `energy` (in (0, 1]) of the sum of squares.
int64_t energy_rank(const at::Tensor& singular_values, double energy);

// The rank Empirical Variational Bayesian Matrix Factorization retains (Nakajima et al.
// 2013, the analytic global solution with the noise variance estimated); 0 when the
// matrix looks like noise.
int64_t evbmf_rank(const at::Tensor& m);

// Mode-n unfolding of a tensor: dimension n first, the rest flattened in order.
at::Tensor unfold(const at::Tensor& t, int64_t mode);

// W [N, C, kh, kw] ~ core x0 u_out x1 u_in: u_out [N, r_out], u_in [C, r_in] with
// orthonormal columns, core [r_out, r_in, kh, kw]. r_in == C gives Tucker-1 (u_in = I).
struct Tucker2 {
  at::Tensor core, u_out, u_in;
  int iterations = 0;
  double error = 0;  // relative Frobenius error of the reconstruction
};
Tucker2 tucker2(const at::Tensor& w, int64_t r_out, int64_t r_in, int max_iterations = 20, double tolerance = 1e-6);
at::Tensor reconstruct(const Tucker2& t);

// W [N, C, kh, kw] ~ sum_r out[:, r] (x) in[:, r] (x) h[:, r] (x) w[:, r].
struct Cp {
  at::Tensor out, in, h, w;  // [N, R], [C, R], [kh, R], [kw, R]
  int iterations = 0;
  bool converged = false;
  double error = 0;  // relative Frobenius error of the reconstruction
};
Cp cp_als(const at::Tensor& w, int64_t rank, int max_iterations = 500, double tolerance = 1e-6, uint64_t seed = 0);
at::Tensor reconstruct(const Cp& cp);

}  // namespace shrink::factorize
