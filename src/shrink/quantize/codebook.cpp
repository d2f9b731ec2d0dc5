#include "shrink/quantize/codebook.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <set>
#include <tuple>

#include "shrink/core/error.h"

namespace shrink::quantize {
namespace {

// 1-D k-means from a linear initialisation; returns (centroids, codes) with every
// centroid used. `x` is float64.
std::pair<at::Tensor, at::Tensor> kmeans_1d(const at::Tensor& x, int64_t k, int iterations) {
  double lo = x.min().item<double>(), hi = x.max().item<double>();
  at::Tensor c = at::linspace(lo, hi, k, at::kDouble);
  at::Tensor codes;
  for (int it = 0; it < iterations; ++it) {
    at::Tensor mids = (c.narrow(0, 1, k - 1) + c.narrow(0, 0, k - 1)) / 2;
    at::Tensor next = at::bucketize(x, mids);
    if (codes.defined() && at::equal(next, codes)) break;
    codes = next;
    at::Tensor sums = at::zeros({k}, at::kDouble).index_add_(0, codes, x);
    at::Tensor counts = at::bincount(codes, {}, k).to(at::kDouble);
    c = at::where(counts > 0, sums / counts.clamp_min(1), c);  // an empty cluster keeps its place
  }
  codes = at::bucketize(x, (c.narrow(0, 1, k - 1) + c.narrow(0, 0, k - 1)) / 2);
  // Drop centroids no weight took, renumbering the codes.
  at::Tensor used = at::bincount(codes, {}, k) > 0;
  at::Tensor renumber = used.to(at::kLong).cumsum(0) - 1;
  return {c.index({used}), renumber.index_select(0, codes)};
}

}  // namespace

WeightSharing::WeightSharing(ir::Graph& g, const CodebookOptions& o) : g_(g) {
  SHRINK_CHECK(o.bits >= 2 && o.bits <= 8, "--bits: codebook mode takes 2 to 8 bits, got ", o.bits);
  for (const std::string& n : o.exclude_nodes)
    SHRINK_CHECK(g.find_node(n), "--exclude: no node named '", n, "' in the model");
  for (const auto& [n, bits] : o.layer_bits) {
    SHRINK_CHECK(g.find_node(n), "--layer-bits: no node named '", n, "' in the model");
    SHRINK_CHECK(bits >= 2 && bits <= 8, "--layer-bits: ", n, " takes 2 to 8 bits, got ", bits);
  }
  at::NoGradGuard no_grad;
  std::set<std::string> seen;
  for (const auto& node : g.nodes()) {
    if (std::find(o.ops.begin(), o.ops.end(), node->op_type) == o.ops.end() || node->inputs().size() < 2) continue;
    const ir::Value* v = node->input(1);
    ir::Initializer* init = v ? g.initializer(v->name) : nullptr;
    CodebookLayer layer{node->name, node->op_type, v ? v->name : ""};
    if (std::find(o.exclude_nodes.begin(), o.exclude_nodes.end(), node->name) != o.exclude_nodes.end()) {
      layer.note = "skipped: excluded";
      // Fine-tuning trains it in float; a pruned zero must not come back.
      if (init && init->tensor.is_floating_point() && seen.insert(v->name).second) {
        at::Tensor zeros = init->tensor.detach().reshape(-1).eq(0).nonzero().view(-1);
        if (zeros.numel()) masked_.emplace_back(v->name, zeros);
      }
    } else if (!init || !init->tensor.is_floating_point()) {
      layer.note = "skipped: weight is not a float initializer";
    } else if (!seen.insert(v->name).second) {
      continue;  // a weight shared by several nodes is clustered once
    }
    if (!layer.note.empty()) {
      layers_.push_back(layer);
      continue;
    }
    at::Tensor w = init->tensor.detach();
    SHRINK_CHECK(at::isfinite(w).all().item<bool>(), "initializer '", v->name, "' of ", node->describe(),
                 " holds NaN or infinity; cannot cluster it");
    at::Tensor flat = w.reshape(-1).to(at::kDouble);
    Shared s;
    s.weight = v->name;
    s.positions = flat.ne(0).nonzero().view(-1);
    layer.weights = flat.numel();
    layer.nonzeros = s.positions.numel();
    if (layer.nonzeros == 0) {
      layer.note = "skipped: every weight is zero";
      layers_.push_back(layer);
      continue;
    }
    at::Tensor x = flat.index_select(0, s.positions);
    auto own = o.layer_bits.find(node->name);
    layer.bits = own == o.layer_bits.end() ? o.bits : own->second;
    const int64_t cap = (layer.nonzeros < layer.weights ? (int64_t{1} << layer.bits) - 1 : int64_t{1} << layer.bits);
    auto [uniq, inverse, counts] = at::_unique2(x, true, true, false);
    if (uniq.numel() <= cap) {
      s.centroids = uniq;
      s.codes = inverse.view(-1);
      layer.note = "kept: " + std::to_string(uniq.numel()) + " distinct values already (codebook holds " +
                   std::to_string(cap) + ")";
    } else {
      std::tie(s.centroids, s.codes) = kmeans_1d(x, cap, o.iterations);
    }
    s.current = s.centroids.index_select(0, s.codes);
    layer.entries = s.centroids.numel();
    layer.relative_error = ((s.current - x).norm() / flat.norm().clamp_min(1e-30)).item<double>();
    write(s);
    shared_.push_back(std::move(s));
    layers_.push_back(layer);
  }
}

void WeightSharing::write(Shared& s) {
  at::Tensor w = g_.initializer(s.weight)->tensor.detach();
  at::Tensor flat = w.view(-1);
  flat.zero_();
  flat.index_put_({s.positions}, s.current.to(w.scalar_type()));
}

void WeightSharing::zero_masked() {
  for (auto& [name, zeros] : masked_) g_.initializer(name)->tensor.detach().view(-1).index_fill_(0, zeros, 0);
}

void WeightSharing::after_step() {
  at::NoGradGuard no_grad;
  zero_masked();
  for (Shared& s : shared_) {
    at::Tensor now = g_.initializer(s.weight)->tensor.detach().view(-1).index_select(0, s.positions).to(at::kDouble);
    at::Tensor moved = at::zeros_like(s.centroids).index_add_(0, s.codes, now - s.current);
    s.centroids += moved;
    s.current = s.centroids.index_select(0, s.codes);
    write(s);
  }
}

void WeightSharing::finish() {
  at::NoGradGuard no_grad;
  zero_masked();
  for (Shared& s : shared_) {
    at::Tensor now = g_.initializer(s.weight)->tensor.detach().view(-1).index_select(0, s.positions).to(at::kDouble);
    at::Tensor sums = at::zeros_like(s.centroids).index_add_(0, s.codes, now);
    at::Tensor counts = at::bincount(s.codes, {}, s.centroids.numel()).to(at::kDouble);
    s.centroids = sums / counts.clamp_min(1);
    s.current = s.centroids.index_select(0, s.codes);
    write(s);
  }
}

}  // namespace shrink::quantize
