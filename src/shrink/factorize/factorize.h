// Low-rank factorization of a graph's layers into plain Conv / Gemm / MatMul nodes:
//   svd     Gemm / MatMul: x W ~ (x A) B, A [in, r] without bias, B [r, out] with the bias;
//           Conv: a kxk conv C -> r (the original stride, padding, dilation), then 1x1 r -> N.
//   tucker  Conv (Tucker-2, Kim et al. 2016): 1x1 C -> R3, kxk R3 -> R4 (original stride,
//           padding, dilation), 1x1 R4 -> N with the bias; Tucker-1 (no input factor) when
//           the input rank would be the full C, e.g. convolutions reading few channels.
//   cp      Conv (Lebedev et al. 2015): 1x1 C -> R, depthwise kh x 1 and 1 x kw (the stride,
//           padding and dilation split between them by axis), 1x1 R -> N with the bias.
// A layer that cannot be factorized, or whose rank would not shrink it, is reported with
// the reason and left as it is; the other layers proceed.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "shrink/ir/graph.h"

namespace shrink::factorize {

struct RankRule {
  enum class Kind { Rank, Ratio, Energy, Vbmf };
  Kind kind = Kind::Energy;
  double value = 0.9;  // rank, compression ratio (> 1) of the layer's weights, or retained energy in (0, 1]
  // vbmf: 1 keeps EVBMF's rank; below 1 moves it toward the full rank, rank = full - w (full - vbmf)
  // ("weakened VBMF", Gusak et al. 2019), for layers whose EVBMF rank is too low to fine-tune back.
  double vbmf_weaken = 1.0;
};

// "8" (a rank), "vbmf"; or with kind chosen by the flag: --ratio 4, --energy 0.9.
RankRule parse_rank(const std::string& text);

struct FactorizeOptions {
  std::string method = "svd";  // svd, tucker, cp
  RankRule rule;
  std::vector<std::string> layers;  // node names (empty: every layer the method applies to)
  int max_iterations = 500;         // CP ALS (HOOI uses at most 20)
  double tolerance = 1e-6;          // stop when the relative error moves less than this
  uint64_t seed = 0;
  bool allow_growth = false;        // factorize even when the result has more weights (tests)
};

struct LayerResult {
  std::string node, op;
  std::string method;           // svd, tucker2, tucker1, cp; empty when not factorized
  std::vector<int64_t> ranks;   // svd: {r}; tucker: {R3 (input), R4 (output)}; cp: {R}
  int64_t params_before = 0, params_after = 0, macs_before = 0, macs_after = 0;
  double error = 0;             // relative Frobenius error of the weight
  std::string skipped;          // why the layer was left as it is
  std::vector<std::string> nodes_after;  // the factors' node names, in order (the last keeps the layer's name)
};

std::vector<LayerResult> factorize(ir::Graph& g, const FactorizeOptions& o);

// Greedy per-layer search (in graph order): the smallest rank (binary search over a
// fraction of the layer's full rank) whose model stays within `tolerance` accuracy points
// of the starting model, each layer's choice kept while the next is searched.
struct SearchOptions {
  double tolerance = 1.0;                                  // accuracy points
  std::function<double(const ir::Graph&)> accuracy;        // on validation data, in [0, 1]
  std::function<void(const std::string&)> progress;        // one line per evaluation (optional)
};
std::vector<LayerResult> factorize_search(ir::Graph& g, const FactorizeOptions& o, const SearchOptions& s);

}  // namespace shrink::factorize
