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

// Attention with one packed input projection, as nn.MultiheadAttention exports (torchvision's
// ViT, nn.TransformerEncoder with or without batch_first, opsets 13 and 17): P = x W (+ b)
// with W [E, 3E], Q, K, V = three Slices of P's last axis, each Reshape'd to
// [L, N*H, dh] (N*H computed as Mul(N, H) under a symbolic batch), the heads' products in
// between, the result Reshape'd to [L*N, E] and projected by a Gemm or MatMul. Removing
// head h takes its columns out of each third of W and b and out of the projection's
// inputs, and rewrites the Slice bounds, the H of N*H and the merged width.
struct PackedAttentionBlock {
  std::string name;            // the in-projection's node name
  ir::Node* in = nullptr;      // MatMul by W [E, 3E]
  ir::Value* bias = nullptr;   // [3E] initializer, or null
  ir::Node* slices[3] = {};    // Q, K, V
  ir::Node* reshapes[3] = {};  // to [L, N*H, dh]
  ir::Node* merge = nullptr;   // Reshape to [L*N, E]
  ir::Node* out = nullptr;     // Gemm or MatMul by the output projection
  int64_t heads = 0, head_dim = 0;
};

std::vector<PackedAttentionBlock> find_packed_attention_blocks(const ir::Graph& g,
                                                               std::vector<std::string>* skipped = nullptr);

// The attention blocks of g in the form above; what looks like one but cannot be pruned
// is described in `skipped` ("attention 'name': reason").
std::vector<AttentionBlock> find_attention_blocks(const ir::Graph& g, std::vector<std::string>* skipped = nullptr);

// Removes round(amount * heads) heads of every block of either form (at least one kept), ranked by
// method: l1 / l2 norms of the head's weights in Wq, Wk, Wv and Wo, taylor (the squared
// first-order Taylor estimate of the head's parameters, from o.gradients), random. The
// pruned blocks are appended to report.pruned as "<name> (heads)"; report.kept records
// the surviving columns of each projection's output.
void prune_heads(ir::Graph& g, const StructuredOptions& o, StructuredReport& report);

}  // namespace shrink::prune
