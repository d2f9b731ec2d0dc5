// Structured (channel) pruning on dependency groups computed from the graph.
//
// Values that must keep the same channels (axis 1) are tied together: a Conv's output,
// the BatchNorm and activations and pools after it, both sides of a residual Add, a
// depthwise Conv's input and output. A group is prunable when its channels are created
// by Conv (group 1) or Gemm layers ("owners", whose output rows are removed) and read
// by Conv or Gemm layers ("consumers", whose input columns are removed; through a
// Flatten, each channel's H*W block). Anything else that touches a group (an op whose
// channel behaviour is not modelled, a graph input or output) leaves it alone: groups
// are never guessed. Removal is physical: the result is a smaller dense graph.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "shrink/ir/graph.h"

namespace shrink::prune {

struct ChannelGroup {
  int64_t channels = 0;
  std::vector<ir::Node*> owners;      // Conv (group 1) / Gemm whose output channels these are
  std::vector<ir::Node*> batch_norms;
  std::vector<ir::Node*> depthwise;   // Conv with group == channels (in and out coupled)
  struct Consumer {
    ir::Node* node;
    int64_t block;  // features per channel as the consumer sees them (H*W after a Flatten)
  };
  std::vector<Consumer> consumers;
  std::vector<ir::Value*> values;     // values carrying the channels on axis 1
  std::vector<ir::Value*> flattened;  // Flatten outputs carrying them as channel-major blocks
  bool prunable = true;
  std::string reason;                 // why not, when not
  std::string name() const;           // the first owner's name
};

std::vector<ChannelGroup> channel_groups(const ir::Graph& g);

struct StructuredOptions {
  std::string method = "l1";  // l1, l2 (filter norms, Li et al. 2017), slim (|BatchNorm scale|), random
  double amount = 0.5;        // fraction of each group's channels to remove, in [0, 1)
  int64_t round_to = 1;       // kept channels rounded up to a multiple of this
  std::vector<std::string> ignored;  // owner node names whose groups are left alone
  uint64_t seed = 0;
};

struct GroupReport {
  std::string name;
  int64_t before = 0, after = 0;
  std::vector<int64_t> kept;  // the surviving channels' original indices, ascending
};

struct StructuredReport {
  std::vector<GroupReport> pruned;
  std::vector<std::string> skipped;  // "group 'name': reason"
};

StructuredReport prune_structured(ir::Graph& g, const StructuredOptions& o);

}  // namespace shrink::prune
