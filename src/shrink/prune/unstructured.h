// Unstructured (element-wise) pruning of Conv, ConvTranspose, Gemm and MatMul weights,
// in the manner of torch.nn.utils.prune:
//   - random, L1 magnitude per layer, global magnitude across layers (every layer keeps
//     a floor so none is emptied), or a caller-supplied importance;
//   - soft: a 0/1 mask kept in the model as `Mul(weight, weight_mask)` feeding the layer,
//     so the forward uses w*mask, masked weights get zero gradient, and the mask is saved
//     with the ONNX model and recognised again on import;
//   - hard: the mask baked into the weights (zeros) and dropped; make_permanent() turns
//     soft masks into hard ones, like prune.remove;
//   - repeated application ranks only the weights still alive and removes `amount` of
//     them, like PyTorch's PruningContainer.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <vector>

#include "shrink/ir/graph.h"

namespace shrink::prune {

struct PrunableWeight {
  ir::Node* node = nullptr;  // the Conv/ConvTranspose/Gemm/MatMul
  std::string weight;        // its weight initializer
  std::string mask;          // its soft mask initializer, "" when none
};

// Layers whose weight (input 1) is a trained initializer, directly or through a soft mask.
std::vector<PrunableWeight> prunable_weights(const ir::Graph& g);

// Importance of each weight element (higher = kept); same shape as the weight.
using ImportanceFn = std::function<at::Tensor(const ir::Node& node, const at::Tensor& weight)>;

struct UnstructuredOptions {
  std::string method = "l1";         // random, l1, global (global magnitude)
  double amount = 0.5;               // fraction of the still-alive weights to remove, in [0, 1)
  std::vector<std::string> layers;   // node names to prune (empty: every prunable layer)
  std::vector<std::string> ignored;  // node names to leave alone
  double min_keep = 0.01;            // global: each layer keeps at least this fraction (and 1 weight)
  uint64_t seed = 0;                 // random
  ImportanceFn importance;           // replaces |w| for l1 and global when set
  bool soft = false;                 // keep masks in the model instead of zeroing weights
};

struct LayerReport {
  std::string node, weight;
  int64_t total = 0, alive_before = 0, alive_after = 0;
};

// Prunes `amount` of the alive weights of each selected layer (l1, random) or of all of
// them together (global). Errors name the flag or layer: an amount outside [0, 1), an
// unknown layer, a layer the request would empty.
std::vector<LayerReport> prune_unstructured(ir::Graph& g, const UnstructuredOptions& o);

// The 0/1 mask of a weight: its soft mask, else (weight != 0).
at::Tensor alive_mask(const ir::Graph& g, const PrunableWeight& w);

// Bakes every soft mask into its weight and removes the Mul and the mask.
int make_permanent(ir::Graph& g);

// Pruning amount per round so that `rounds` rounds remove `amount` in all: 1-(1-a)^(1/n).
double amount_per_round(double amount, int rounds);

}  // namespace shrink::prune
