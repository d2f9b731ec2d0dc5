// Attention-head pruning: whole heads of multi-head self-attention removed, in the form
// PyTorch exports attention written with separate projections (the zoo's vit, BERT-style
// encoders): Q, K, V = x Wq (+ bq), x Wk (+ bk), x Wv (+ bv), each Reshape'd to
// [..., heads, head width] and Transpose'd to put the heads before the tokens (K also
// its width before them), softmax(Q K^T * scale) V, Transpose'd back, Reshape'd to
// [..., heads * head width] and projected by Wo. Removing head h takes its head-width
// columns out of Wq, Wk, Wv and their biases, its rows out of Wo, and rewrites both
// Reshape targets; the rest of the block is unchanged. Blocks whose tensors another node
// also reads, or whose shape constants are not initializers, are left alone and named.
#pragma once
#include <string>
#include <vector>

#include "shrink/ir/graph.h"
#include "shrink/prune/structured.h"

namespace shrink::prune {

struct AttentionBlock {
  std::string name;                   // the Q projection's node name
  ir::Node *q = nullptr, *k = nullptr, *v = nullptr, *out = nullptr;  // the MatMuls with weights
  ir::Value *q_bias = nullptr, *k_bias = nullptr, *v_bias = nullptr;  // bias initializers, or null
  ir::Node *q_reshape = nullptr, *k_reshape = nullptr, *v_reshape = nullptr, *merge = nullptr;
  int64_t heads = 0, head_dim = 0;
};

// The attention blocks of g in the form above; what looks like one but cannot be pruned
// is described in `skipped` ("attention 'name': reason").
std::vector<AttentionBlock> find_attention_blocks(const ir::Graph& g, std::vector<std::string>* skipped = nullptr);

// Removes round(amount * heads) heads of every block (at least one kept), ranked by
// method: l1 / l2 norms of the head's weights in Wq, Wk, Wv and Wo, taylor (the squared
// first-order Taylor estimate of the head's parameters, from o.gradients), random. The
// pruned blocks are appended to report.pruned as "<name> (heads)"; report.kept records
// the surviving columns of each projection's output.
void prune_heads(ir::Graph& g, const StructuredOptions& o, StructuredReport& report);

}  // namespace shrink::prune
