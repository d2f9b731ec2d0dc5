#include "shrink/prune/heads.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "shrink/core/error.h"
#include "shrink/ops/shape_inference.h"

namespace shrink::prune {
namespace {

// The only user of v that reads its data (Shape nodes read only its extents: PyTorch's
// view(x.size(0), ...) exports them beside the Reshape), or null; never a graph output.
ir::Node* sole_user(const ir::Graph& g, const ir::Value* v) {
  if (!v || g.is_graph_output(v)) return nullptr;
  ir::Node* only = nullptr;
  for (ir::Node* u : v->users) {
    if (u->op_type == "Shape") continue;
    if (only) return nullptr;
    only = u;
  }
  return only;
}

ir::Node* made_by(const ir::Value* v, const char* op) {
  return v && v->producer && v->producer->op_type == op ? v->producer : nullptr;
}

bool is_perm(const ir::Node* n, std::vector<int64_t> perm) {
  return n && n->op_type == "Transpose" && n->attrs.get_ints("perm") == perm;
}

bool scalar_constant(const ir::Graph& g, const ir::Value* v) {
  const ir::Initializer* init = v ? g.initializer(v->name) : nullptr;
  return init && init->tensor.numel() == 1;
}

// Steps up through a Mul or Div by a scalar constant (a scale on Q or on the scores).
const ir::Value* above_scale(const ir::Graph& g, const ir::Value* v) {
  const ir::Node* p = v->producer;
  if (p && (p->op_type == "Mul" || p->op_type == "Div") && v->users.size() == 1) {
    if (scalar_constant(g, p->input(1))) return p->input(0);
    if (p->op_type == "Mul" && scalar_constant(g, p->input(0))) return p->input(1);
  }
  return v;
}

// A Reshape's target, as a constant or as a Concat of one-element pieces (PyTorch's
// export of view(x.size(0), x.size(1), H, dh) with a symbolic batch): its rank and the
// entries that are constants (-2 where an entry is computed).
struct Target {
  int64_t rank = 0;
  std::vector<int64_t> entries;
  bool known() const { return rank > 0; }
};

Target target_of(const ir::Graph& g, const ir::Node* reshape) {
  Target t;
  const ir::Value* shape = reshape->input(1);
  if (const ir::Initializer* init = g.initializer(shape->name)) {
    if (init->tensor.dim() != 1) return t;
    at::Tensor v = init->tensor.to(at::kLong).contiguous();
    t.entries.assign(v.data_ptr<int64_t>(), v.data_ptr<int64_t>() + v.numel());
    t.rank = v.numel();
    return t;
  }
  const ir::Node* concat = made_by(shape, "Concat");
  if (!concat || concat->attrs.get_int("axis", 0) != 0 || shape->users.size() != 1) return t;
  for (const ir::Value* piece : concat->inputs()) {
    if (!piece || !piece->type.has_shape || piece->type.rank() != 1 || piece->type.dims[0] != 1) return Target{};
    const ir::Initializer* init = g.initializer(piece->name);
    t.entries.push_back(init ? init->tensor.to(at::kLong).reshape({-1})[0].item<int64_t>() : -2);
  }
  t.rank = static_cast<int64_t>(t.entries.size());
  return t;
}

// Sets entry `index` of a Reshape's target (a constant entry of either form) to `value`.
void set_target_entry(ir::Graph& g, ir::Node* reshape, int64_t index, int64_t value) {
  ir::Value* shape = reshape->input(1);
  if (const ir::Initializer* init = g.initializer(shape->name)) {
    at::Tensor t = init->tensor.to(at::kLong).clone();
    t[index] = value;
    g.set_input(reshape, 1, g.add_initializer(g.unique_name(reshape->name + ".shape"), t, ir::InitKind::Constant));
    return;
  }
  ir::Node* concat = shape->producer;
  g.set_input(concat, static_cast<size_t>(index),
              g.add_initializer(g.unique_name(reshape->name + ".shape"), at::tensor({value}, at::kLong),
                                ir::InitKind::Constant));
}

struct Projection {
  ir::Node *matmul = nullptr, *reshape = nullptr;
  ir::Node* add = nullptr;     // the Add of the bias, or null
  ir::Value* bias = nullptr;   // its initializer
};

// [..., H*dh] projection -> (Add bias) -> Reshape [..., H, dh] -> `value`: the
// projection, or an empty one with `why` set.
Projection projection_of(const ir::Graph& g, const ir::Value* reshaped, int64_t& heads, int64_t& head_dim,
                         std::string& why) {
  Projection p;
  p.reshape = made_by(reshaped, "Reshape");
  Target shape = p.reshape ? target_of(g, p.reshape) : Target{};
  if (shape.rank != 4) {
    why = "the heads are not split by a Reshape to a rank-4 shape of known heads and head width";
    return {};
  }
  int64_t h = shape.entries[2], d = shape.entries[3];
  const ir::Value* x = p.reshape->input(0);
  if (ir::Node* add = made_by(x, "Add")) {
    int side = g.initializer(add->input(1)->name) ? 1 : g.initializer(add->input(0)->name) ? 0 : -1;
    if (side >= 0 && g.initializer(add->input(side)->name)->tensor.dim() == 1) {
      p.add = add;
      p.bias = add->input(side);
      x = add->input(1 - side);
    }
  }
  p.matmul = made_by(x, "MatMul");
  const ir::Initializer* w = p.matmul ? g.initializer(p.matmul->input(1)->name) : nullptr;
  if (!w || w->tensor.dim() != 2 || w->kind != ir::InitKind::Parameter) {
    why = "a head projection is not a MatMul by a trained [in, out] weight";
    return {};
  }
  if (h <= 0 || d <= 0 || w->tensor.size(1) != h * d) {
    why = "the Reshape's heads x head width do not match the projection's " + std::to_string(w->tensor.size(1)) + " outputs";
    return {};
  }
  if (heads && (heads != h || head_dim != d)) {
    why = "Q, K and V split into different heads";
    return {};
  }
  heads = h, head_dim = d;
  for (const ir::Value* v : {p.matmul->output(0), p.add ? p.add->output(0) : nullptr, p.reshape->output(0)})
    if (v && !sole_user(g, v)) {
      why = "'" + v->name + "' is read by more than the attention";
      return {};
    }
  return p;
}

}  // namespace

std::vector<AttentionBlock> find_attention_blocks(const ir::Graph& g, std::vector<std::string>* skipped) {
  std::vector<AttentionBlock> blocks;
  for (const auto& node : g.nodes()) {
    if (node->op_type != "Softmax") continue;
    const ir::Node* softmax = node.get();
    std::string why;
    AttentionBlock b;
    auto fail_block = [&](const std::string& reason) {
      if (skipped && !b.name.empty()) skipped->push_back("attention '" + b.name + "': " + reason);
    };
    // Scores: MatMul(Q, K^T), maybe scaled, maybe with a mask added that is the same for
    // every head, in either order.
    const ir::Value* scores = softmax->input(0);
    for (int step = 0; step < 2; ++step) {
      scores = above_scale(g, scores);
      ir::Node* add = made_by(scores, "Add");
      if (!add || scores->users.size() != 1) break;
      for (int side = 0; side < 2; ++side) {
        const ir::Value* mask = add->input(1 - side);
        if (mask->type.has_shape && (mask->type.rank() < 3 || mask->type.dims[mask->type.rank() - 3] == 1) &&
            add->input(side)->producer && add->input(side)->producer->op_type != "Add") {
          scores = add->input(side);
          break;
        }
      }
    }
    ir::Node* qk = made_by(scores, "MatMul");
    ir::Node* av = sole_user(g, softmax->output(0));
    if (!qk || !av || av->op_type != "MatMul" || av->input(0) != softmax->output(0)) continue;
    // Q: Transpose(0 2 1 3) of the split projection, maybe scaled.
    const ir::Value* q = above_scale(g, qk->input(0));
    ir::Node* tq = made_by(q, "Transpose");
    // K^T: Transpose(0 2 3 1), or Transpose(0 2 1 3) then Transpose(0 1 3 2).
    ir::Node* tk = made_by(qk->input(1), "Transpose");
    const ir::Value* k_split = nullptr;
    if (is_perm(tk, {0, 2, 3, 1})) {
      k_split = tk->input(0);
    } else if (is_perm(tk, {0, 1, 3, 2}) && is_perm(made_by(tk->input(0), "Transpose"), {0, 2, 1, 3})) {
      k_split = tk->input(0)->producer->input(0);
    }
    ir::Node* tv = made_by(av->input(1), "Transpose");
    if (!is_perm(tq, {0, 2, 1, 3}) || !k_split || !is_perm(tv, {0, 2, 1, 3})) continue;
    if (!sole_user(g, tq->output(0)) || !sole_user(g, tk->output(0)) || !sole_user(g, tv->output(0))) continue;
    int64_t heads = 0, head_dim = 0;
    Projection pq = projection_of(g, tq->input(0), heads, head_dim, why);
    if (pq.matmul) b.name = pq.matmul->name;
    if (!pq.matmul) {
      b.name = softmax->name;
      fail_block(why);
      continue;
    }
    Projection pk = projection_of(g, k_split, heads, head_dim, why);
    Projection pv = pk.matmul ? projection_of(g, tv->input(0), heads, head_dim, why) : Projection{};
    if (!pk.matmul || !pv.matmul) {
      fail_block(why);
      continue;
    }
    // Heads merged: Transpose(0 2 1 3) -> Reshape [..., H*dh] -> MatMul by Wo [H*dh, out].
    ir::Node* back = sole_user(g, av->output(0));
    ir::Node* merge = back && is_perm(back, {0, 2, 1, 3}) ? sole_user(g, back->output(0)) : nullptr;
    Target merged = merge && merge->op_type == "Reshape" ? target_of(g, merge) : Target{};
    ir::Node* out = merged.known() ? sole_user(g, merge->output(0)) : nullptr;
    const ir::Initializer* wo = out && out->op_type == "MatMul" && out->input(0) == merge->output(0)
                                    ? g.initializer(out->input(1)->name)
                                    : nullptr;
    if (!wo || wo->kind != ir::InitKind::Parameter || wo->tensor.dim() != 2 || wo->tensor.size(0) != heads * head_dim) {
      fail_block("the heads are not merged by Transpose -> Reshape -> MatMul by a trained weight");
      continue;
    }
    int64_t last = merged.entries.back();
    if (last != heads * head_dim && last != -1) {
      fail_block("the merging Reshape's last extent " + std::to_string(last) + " is not heads x head width");
      continue;
    }
    b.q = pq.matmul, b.k = pk.matmul, b.v = pv.matmul, b.out = out;
    b.q_bias = pq.bias, b.k_bias = pk.bias, b.v_bias = pv.bias;
    b.q_reshape = pq.reshape, b.k_reshape = pk.reshape, b.v_reshape = pv.reshape, b.merge = merge;
    b.heads = heads, b.head_dim = head_dim;
    blocks.push_back(b);
  }
  return blocks;
}

void prune_heads(ir::Graph& g, const StructuredOptions& o, StructuredReport& report) {
  std::vector<AttentionBlock> blocks = find_attention_blocks(g, &report.skipped);
  std::vector<AttentionBlock> chosen;
  for (const AttentionBlock& b : blocks) {
    bool take = o.layers.empty() || std::find(o.layers.begin(), o.layers.end(), b.name) != o.layers.end();
    if (std::find(o.ignored.begin(), o.ignored.end(), b.name) != o.ignored.end()) {
      report.skipped.push_back("attention '" + b.name + "': ignored");
      take = false;
    }
    if (take && b.heads > 1) chosen.push_back(b);
  }
  if (chosen.empty()) return;
  if (o.method == "slim") {
    for (const AttentionBlock& b : chosen) report.skipped.push_back("attention '" + b.name + "': slim needs a BatchNorm");
    return;
  }
  at::NoGradGuard no_grad;
  auto weight = [&](const ir::Node* n) { return g.initializer(n->input(1)->name)->tensor.detach().to(at::kDouble); };
  // Per block, the score of each head: [heads].
  std::vector<at::Tensor> scores;
  for (const AttentionBlock& b : chosen) scores.push_back(at::zeros({b.heads}, at::kDouble));
  auto per_head_in = [](const at::Tensor& t, int64_t heads) {  // [in, H*dh] columns -> [H]
    return t.reshape({t.size(0), heads, -1}).sum(at::IntArrayRef{0, 2});
  };
  auto per_head_out = [](const at::Tensor& t, int64_t heads) {  // [H*dh, out] rows -> [H]
    return t.reshape({heads, -1}).sum(1);
  };
  if (o.method == "random") {
    at::Generator gen = at::detail::createCPUGenerator(o.seed);
    for (size_t i = 0; i < chosen.size(); ++i) scores[i] = at::rand({chosen[i].heads}, gen, at::kDouble);
  } else if (o.method == "l1" || o.method == "l2") {
    auto f = [&](const at::Tensor& t) { return o.method == "l1" ? t.abs() : t.pow(2); };
    for (size_t i = 0; i < chosen.size(); ++i) {
      const AttentionBlock& b = chosen[i];
      for (const ir::Node* n : {b.q, b.k, b.v}) scores[i] += per_head_in(f(weight(n)), b.heads);
      scores[i] += per_head_out(f(weight(b.out)), b.heads);
      if (o.method == "l2") scores[i].sqrt_();
    }
  } else {  // taylor: (sum of w * dL/dw over the head's parameters)^2, averaged over batches
    SHRINK_CHECK(o.gradients, "taylor importance needs gradients (training data)");
    int64_t batches = 0;
    at::AutoGradMode grad_on(true);
    o.gradients([&](const std::map<std::string, at::Tensor>& grads) {
      at::NoGradGuard off;
      for (size_t i = 0; i < chosen.size(); ++i) {
        const AttentionBlock& b = chosen[i];
        at::Tensor first = at::zeros({b.heads}, at::kDouble);
        auto wg = [&](const ir::Value* v) -> at::Tensor {
          auto it = grads.find(v->name);
          if (it == grads.end() || !it->second.defined()) return {};
          return g.initializer(v->name)->tensor.detach().to(at::kDouble) * it->second.detach().to(at::kDouble);
        };
        for (const ir::Node* n : {b.q, b.k, b.v})
          if (at::Tensor t = wg(n->input(1)); t.defined()) first += per_head_in(t, b.heads);
        for (const ir::Value* bias : {b.q_bias, b.k_bias, b.v_bias})
          if (at::Tensor t = bias ? wg(bias) : at::Tensor(); t.defined()) first += t.reshape({b.heads, -1}).sum(1);
        if (at::Tensor t = wg(b.out->input(1)); t.defined()) first += per_head_out(t, b.heads);
        scores[i] += first.pow(2);
      }
      ++batches;
    });
    SHRINK_CHECK(batches > 0, "taylor importance: no batch of gradients to estimate with");
    for (at::Tensor& s : scores) s /= static_cast<double>(batches);
  }

  for (size_t i = 0; i < chosen.size(); ++i) {
    const AttentionBlock& b = chosen[i];
    double amount = o.amount;
    if (auto it = o.layer_amounts.find(b.name); it != o.layer_amounts.end()) amount = it->second;
    int64_t cap = std::min<int64_t>(b.heads - 1, static_cast<int64_t>(std::floor(o.max_ratio * b.heads + 1e-9)));
    int64_t remove = std::min<int64_t>(cap, static_cast<int64_t>(std::nearbyint(amount * b.heads)));
    if (remove <= 0) continue;
    std::vector<int64_t> order(b.heads);
    for (int64_t h = 0; h < b.heads; ++h) order[h] = h;
    at::Tensor s = scores[i].contiguous();
    const double* sp = s.data_ptr<double>();
    std::stable_sort(order.begin(), order.end(), [&](int64_t l, int64_t r) { return sp[l] < sp[r]; });
    std::vector<int64_t> kept_heads(order.begin() + remove, order.end());
    std::sort(kept_heads.begin(), kept_heads.end());
    std::vector<int64_t> columns;
    for (int64_t h : kept_heads)
      for (int64_t j = 0; j < b.head_dim; ++j) columns.push_back(h * b.head_dim + j);
    const int64_t left = static_cast<int64_t>(kept_heads.size());
    for (const ir::Node* n : {b.q, b.k, b.v}) {
      g.slice_initializer(n->input(1)->name, 1, columns);
      report.kept[n->output(0)->name] = columns;
    }
    for (const ir::Value* bias : {b.q_bias, b.k_bias, b.v_bias})
      if (bias) g.slice_initializer(bias->name, 0, columns);
    g.slice_initializer(b.out->input(1)->name, 0, columns);
    for (ir::Node* r : {b.q_reshape, b.k_reshape, b.v_reshape}) set_target_entry(g, r, 2, left);
    Target merged = target_of(g, b.merge);
    if (merged.entries.back() > 0) set_target_entry(g, b.merge, merged.rank - 1, left * b.head_dim);
    report.pruned.push_back({b.name + " (heads)", b.heads, left});
  }
  g.remove_unused_values();
  ops::infer_shapes(g);
}

}  // namespace shrink::prune
