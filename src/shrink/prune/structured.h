// Structured (channel) pruning on dependency groups computed from the graph.
//
// Every value that carries channels on axis 1 has one slot per channel, and the graph's
// ops tie slots together: a Conv's output channel to the BatchNorm, activation and pool
// channels after it, both sides of a residual Add, all input and output channels of one
// group of a grouped or depthwise Conv (whole groups go), a Concat input's channel to its place in the output, a Split output's channel
// to its place in the input, and ShuffleNet's channel shuffle (Reshape -> Transpose ->
// Reshape) through its index permutation. Slots tied together form a *cluster*: one
// channel as seen everywhere, removed as a whole. Clusters that share values form a
// *group*, within which the channels are ranked and a fraction removed.
//
// A cluster can be removed when a Conv (group 1), ConvTranspose, Gemm or MatMul
// ("owner") creates it and every op that touches it has a known channel rule. Anything
// else - an op whose channel behaviour is not modelled, a graph input or output, a
// grouped ConvTranspose - leaves the clusters it touches alone: they are never guessed.
// Removal is physical: the result is a smaller dense graph (a shuffle whose surviving
// channels no longer form a shuffle becomes a Gather of the surviving permutation).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "shrink/ir/graph.h"

namespace shrink::prune {

struct ChannelGroup {
  std::string name;                  // the first owner's name
  std::vector<ir::Node*> owners;     // layers creating some of the group's channels
  std::vector<ir::Value*> values;    // values carrying the group's channels on axis 1
  int64_t clusters = 0;              // independent channels in the group
  int64_t removable = 0;             // clusters that may be removed
  std::string reason;                // why some clusters are fixed (empty when none is)
  bool prunable() const { return removable > 0; }
};

// The groups of g's channels (a shared parameter ties its users: see unshare_parameters);
// embedding: as StructuredOptions::embedding.
std::vector<ChannelGroup> channel_groups(const ir::Graph& g, bool embedding = false);

// Gives every further user of a trained initializer read by several nodes a copy of
// its own (as separate layers' parameters are), so each layer's channels can go
// independently; the exporter stores tensors that stay equal once.
void unshare_parameters(ir::Graph& g);

// Calls `visit` once per batch with the gradients of the loss with respect to the
// graph's parameters, by initializer name.
using GradientVisitor = std::function<void(const std::map<std::string, at::Tensor>& grads)>;
using GradientSource = std::function<void(const GradientVisitor& visit)>;

struct StructuredOptions {
  // l1, l2: filter norms (Li et al. 2017); slim: |BatchNorm scale| (Liu et al. 2017);
  // taylor: first-order Taylor estimate of the loss change, (sum of w * dL/dw over the
  // channel's parameters)^2 averaged over batches (Molchanov et al. 2019); random.
  std::string method = "l1";
  double amount = 0.5;               // fraction of the channels to remove, in [0, 1)
  std::map<std::string, double> layer_amounts;  // owner name -> its group's own fraction
  std::vector<std::string> layers;   // owner names whose groups are pruned (empty: all)
  std::vector<std::string> ignored;  // owner names whose groups are left alone
  double max_ratio = 1.0;            // at most this fraction of any group removed
  bool global = false;               // rank channels across groups (scores normalised by each group's mean)
  int64_t round_to = 1;              // kept channels per group rounded up to a multiple of this
  uint64_t seed = 0;
  GradientSource gradients;          // taylor: the batches to estimate with
  // Transformers: prune the embedding width too (the residual stream through every block's
  // LayerNormalization, residual Add, learned positions and class token, as Torch-Pruning
  // does; the normalization statistics are then taken over the remaining channels).
  bool embedding = false;
};

struct GroupReport {
  std::string name;
  int64_t before = 0, after = 0;  // clusters (channels) of the group
};

struct StructuredReport {
  std::vector<GroupReport> pruned;
  // Every value whose channels changed: the surviving channels' original indices, ascending.
  std::map<std::string, std::vector<int64_t>> kept;
  std::vector<std::string> skipped;  // "group 'name': reason" for groups (or parts) left alone
};

StructuredReport prune_structured(ir::Graph& g, const StructuredOptions& o);

}  // namespace shrink::prune
