// A small Vision Transformer (Dosovitskiy et al. 2021) for 28x28 and 32x32 images, in the
// form torchvision's VisionTransformer exports: a patch embedding (a convolution with
// stride = kernel = patch), a learned class token and learned positions, pre-norm
// encoder blocks (LayerNorm -> multi-head self-attention -> residual, LayerNorm -> GELU
// MLP -> residual), a final LayerNorm and a linear head on the class token. Attention is
// written out as PyTorch exports nn.MultiheadAttention's math: Q, K and V projections
// reshaped to [N, heads, tokens, head width], softmax(Q K^T / sqrt(head width)) V, the
// heads merged back and projected.
#include <cmath>

#include "shrink/core/error.h"
#include "shrink/zoo/zoo.h"

namespace shrink::zoo {
namespace {

ir::Value* attention(Builder& b, ir::Value* x, int64_t heads) {
  int64_t tokens = x->type.dims.at(1), d = x->type.dims.at(2), dh = d / heads;
  auto split_heads = [&](ir::Value* t, std::vector<int64_t> perm) {
    return b.transpose(b.reshape(t, {0, tokens, heads, dh}), perm);
  };
  ir::Value* q = split_heads(b.dense(x, d, "q"), {0, 2, 1, 3});  // [N, H, T, dh]
  ir::Value* k = split_heads(b.dense(x, d, "k"), {0, 2, 3, 1});  // [N, H, dh, T]
  ir::Value* v = split_heads(b.dense(x, d, "v"), {0, 2, 1, 3});  // [N, H, T, dh]
  ir::Value* weights = b.softmax(b.scale(b.matmul(q, k), static_cast<float>(1.0 / std::sqrt(static_cast<double>(dh)))));
  ir::Value* merged = b.reshape(b.transpose(b.matmul(weights, v), {0, 2, 1, 3}), {0, tokens, d});
  return b.dense(merged, d, "out");
}

}  // namespace

ir::Value* build_vit(Builder& b, ir::Value* x, const ModelOptions& o) {
  int64_t width = std::max<int64_t>(1, std::lround(64 * o.width));
  int64_t depth = o.depth > 0 ? o.depth : 4, heads = o.heads > 0 ? o.heads : 4;
  SHRINK_CHECK(width % heads == 0, "vit: the embedding width ", width, " (64 x width) must divide by the ", heads,
               " heads");
  // At most 8 x 8 patches: 4x4 pixels for 28x28 (49 tokens) and 32x32 (64 tokens).
  int64_t h = o.input.at(1), w = o.input.at(2);
  int64_t patch = std::max<int64_t>(1, (std::max(h, w) + 7) / 8);
  SHRINK_CHECK(h >= patch && w >= patch, "vit: the image ", h, "x", w, " is smaller than a patch");
  b.push_scope("patch");
  x = b.conv(x, width, patch, patch);  // [N, D, h/p, w/p]
  b.pop_scope();
  int64_t tokens = (h / patch) * (w / patch);
  x = b.transpose(b.reshape(x, {0, width, tokens}), {0, 2, 1});  // [N, T, D]
  x = b.prepend_token(x, "class_token");
  x = b.add_learned(x, "pos_embedding", {1, tokens + 1, width}, 0.02);
  for (int64_t i = 0; i < depth; ++i) {
    b.push_scope("encoder." + std::to_string(i));
    b.push_scope("attn");
    x = b.add(x, attention(b, b.layer_norm(x), heads));
    b.pop_scope();
    b.push_scope("mlp");
    x = b.add(x, b.dense(b.gelu(b.dense(b.layer_norm(x), 2 * width, "fc1")), width, "fc2"));
    b.pop_scope();
    b.pop_scope();
  }
  x = b.take(b.layer_norm(x), 1, 0);  // the class token, [N, D]
  b.push_scope("head");
  x = b.linear(x, o.classes);
  b.pop_scope();
  return x;
}

}  // namespace shrink::zoo
