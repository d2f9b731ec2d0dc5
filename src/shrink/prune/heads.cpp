#include "shrink/prune/heads.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>

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

namespace {

// One scalar int64 constant (an initializer of one element).
bool int_constant(const ir::Graph& g, const ir::Value* v, int64_t& out) {
  const ir::Initializer* init = v ? g.initializer(v->name) : nullptr;
  if (!init || init->tensor.numel() != 1 || init->tensor.is_floating_point()) return false;
  out = init->tensor.to(at::kLong).reshape({-1})[0].item<int64_t>();
  return true;
}

// A Slice of the last axis with constant bounds and step 1: [start, end).
bool last_axis_slice(const ir::Graph& g, const ir::Node* n, int64_t rank, int64_t& start, int64_t& end) {
  if (!n || n->op_type != "Slice" || n->inputs().size() < 4) return false;
  int64_t axis = 0, step = 1;
  if (!int_constant(g, n->input(1), start) || !int_constant(g, n->input(2), end) || !int_constant(g, n->input(3), axis))
    return false;
  if (n->inputs().size() > 4 && n->input(4) && (!int_constant(g, n->input(4), step) || step != 1)) return false;
  return axis == -1 || axis == rank - 1;
}

}  // namespace

std::vector<PackedAttentionBlock> find_packed_attention_blocks(const ir::Graph& g, std::vector<std::string>* skipped) {
  std::vector<PackedAttentionBlock> blocks;
  for (const auto& node : g.nodes()) {
    ir::Node* in = node.get();
    if (in->op_type != "MatMul" || !in->domain.empty()) continue;
    const ir::Initializer* w = g.initializer(in->input(1)->name);
    if (!w || w->kind != ir::InitKind::Parameter || w->tensor.dim() != 2 || w->tensor.size(1) != 3 * w->tensor.size(0))
      continue;
    const int64_t e = w->tensor.size(0);
    PackedAttentionBlock b;
    b.name = in->name;
    b.in = in;
    auto fail_block = [&](const std::string& why) {
      if (skipped) skipped->push_back("attention '" + b.name + "': " + why);
    };
    ir::Value* p = in->output(0);
    if (!p->type.has_shape) continue;
    if (p->users.size() == 1 && p->users[0]->op_type == "Add" && !g.is_graph_output(p)) {
      ir::Node* add = p->users[0];
      ir::Value* other = add->input(0) == p ? add->input(1) : add->input(0);
      const ir::Initializer* bias = g.initializer(other->name);
      if (bias && bias->tensor.dim() == 1 && bias->tensor.size(0) == 3 * e) {
        b.bias = other;
        p = add->output(0);
      }
    }
    // Q, K, V: the thirds of P's last axis.
    if (g.is_graph_output(p) || p->users.size() != 3) continue;
    bool thirds = true;
    for (ir::Node* u : p->users) {
      int64_t start = 0, end = 0;
      if (!last_axis_slice(g, u, p->type.rank(), start, end) || start % e != 0 || start / e > 2 ||
          !(end == start + e || (start == 2 * e && end >= 3 * e)) || b.slices[start / e]) {
        thirds = false;
        break;
      }
      b.slices[start / e] = u;
    }
    if (!thirds) continue;
    // Each third Reshape'd to [L, N*H, dh].
    std::string why;
    std::vector<ir::Node*> muls;  // the Mul(N, H) nodes computing N*H
    for (int i = 0; i < 3 && why.empty(); ++i) {
      ir::Node* r = sole_user(g, b.slices[i]->output(0));
      Target t = r && r->op_type == "Reshape" ? target_of(g, r) : Target{};
      if (t.rank != 3 || t.entries[2] <= 0 || e % t.entries[2] != 0) {
        why = "the heads are not split by a Reshape to [tokens, batch x heads, head width]";
        break;
      }
      const int64_t dh = t.entries[2], h = e / dh;
      if (b.heads && (b.heads != h || b.head_dim != dh)) why = "Q, K and V split into different heads";
      b.heads = h, b.head_dim = dh, b.reshapes[i] = r;
      if (t.entries[1] >= 0) {
        if (t.entries[1] % h != 0) why = "the Reshape's batch x heads extent is not a multiple of the heads";
        continue;
      }
      // Computed: Concat piece 1 = Unsqueeze(Mul(N, H)).
      const ir::Node* unsq = made_by(r->input(1)->producer->input(1), "Unsqueeze");
      ir::Node* mul = unsq ? made_by(unsq->input(0), "Mul") : nullptr;
      int64_t c = 0;
      if (!mul || !(int_constant(g, mul->input(0), c) || int_constant(g, mul->input(1), c)) || c != h) {
        why = "the batch x heads extent is not computed as Mul(batch, heads)";
        break;
      }
      if (std::find(muls.begin(), muls.end(), mul) == muls.end()) muls.push_back(mul);
    }
    // What the heads flow through up to the merging Reshape: each op works head by head.
    std::set<const ir::Node*> inside(std::begin(b.reshapes), std::end(b.reshapes));
    std::vector<const ir::Value*> frontier;
    for (ir::Node* r : b.reshapes)
      if (r) frontier.push_back(r->output(0));
    while (why.empty() && !frontier.empty()) {
      const ir::Value* v = frontier.back();
      frontier.pop_back();
      if (g.is_graph_output(v)) why = "'" + v->name + "' is a graph output";
      for (ir::Node* u : v->users) {
        if (!why.empty() || inside.count(u) || u == b.merge) continue;
        const std::string& op = u->op_type;
        if (op == "Reshape" && u->input(0) == v && !b.merge) {
          b.merge = u;
          continue;
        }
        const bool scaled = (op == "Div" || op == "Mul") && (scalar_constant(g, u->input(1)) ||
                                                              (op == "Mul" && scalar_constant(g, u->input(0))));
        const bool softmax = op == "Softmax" && (u->attrs.get_int("axis", -1) == -1 || u->attrs.get_int("axis", -1) == 2);
        if (!(op == "Transpose" || op == "MatMul" || op == "Add" || scaled || softmax) || !u->domain.empty()) {
          why = "'" + v->name + "' is read by " + u->describe() + " between the heads' split and merge";
          break;
        }
        inside.insert(u);
        frontier.push_back(u->output(0));
      }
    }
    // Every other input inside is a constant, or (an Add's) a mask without a heads axis.
    for (const ir::Node* n : inside)
      for (const ir::Value* x : n->inputs()) {
        if (!why.empty() || !x || (x->producer && inside.count(x->producer)) || g.initializer(x->name)) continue;
        if (std::find(std::begin(b.slices), std::end(b.slices), x->producer) != std::end(b.slices)) continue;
        if (n->op_type == "Reshape" && x == n->input(1)) continue;
        if (!(n->op_type == "Add" && x->type.has_shape && x->type.rank() <= 2))
          why = n->describe() + " mixes in '" + x->name + "'";
      }
    if (why.empty() && !b.merge) why = "the heads are not merged by a Reshape";
    if (why.empty()) {
      Target merged = target_of(g, b.merge);
      b.out = sole_user(g, b.merge->output(0));
      const ir::Initializer* wo = b.out && b.out->input(0) == b.merge->output(0) && b.out->inputs().size() >= 2
                                      ? g.initializer(b.out->input(1)->name)
                                      : nullptr;
      const bool gemm = b.out && b.out->op_type == "Gemm" && b.out->attrs.get_int("transA", 0) == 0;
      const int64_t in_axis = gemm && b.out->attrs.get_int("transB", 0) ? 1 : 0;
      if (merged.rank != 2 || merged.entries[1] != e)
        why = "the merging Reshape is not to [tokens x batch, " + std::to_string(e) + "]";
      else if (!wo || wo->kind != ir::InitKind::Parameter || wo->tensor.dim() != 2 || wo->tensor.size(in_axis) != e ||
               !(gemm || b.out->op_type == "MatMul"))
        why = "the merged heads are not projected by a Gemm or MatMul by a trained weight";
    }
    for (ir::Node* mul : muls)
      for (const ir::Node* u : mul->output(0)->users)
        if (why.empty() && u->op_type != "Unsqueeze") why = "the batch x heads extent is also read by " + u->describe();
    if (!why.empty()) {
      fail_block(why);
      continue;
    }
    blocks.push_back(b);
  }
  return blocks;
}

namespace {

// Heads of one block of either form: how to score them and how to remove them.
struct HeadUnit {
  std::string name;
  int64_t heads = 0;
  using PerHead = std::function<at::Tensor(const at::Tensor&)>;  // a parameter (or w * grad) -> [heads]
  std::vector<std::pair<const ir::Value*, PerHead>> weights, biases;
  std::function<std::vector<int64_t>(const std::vector<int64_t>&)> remove;  // kept heads -> kept columns
  std::vector<const ir::Value*> projections;
};

HeadUnit unit_of(ir::Graph& g, const AttentionBlock& b) {
  HeadUnit u;
  u.name = b.name;
  u.heads = b.heads;
  const int64_t heads = b.heads;
  auto in = [heads](const at::Tensor& t) { return t.reshape({t.size(0), heads, -1}).sum(at::IntArrayRef{0, 2}); };
  auto out = [heads](const at::Tensor& t) { return t.reshape({heads, -1}).sum(1); };
  for (const ir::Node* n : {b.q, b.k, b.v}) u.weights.push_back({n->input(1), in});
  u.weights.push_back({b.out->input(1), out});
  for (const ir::Value* bias : {b.q_bias, b.k_bias, b.v_bias})
    if (bias) u.biases.push_back({bias, out});
  for (const ir::Node* n : {b.q, b.k, b.v}) u.projections.push_back(n->output(0));
  u.remove = [&g, b](const std::vector<int64_t>& kept) {
    std::vector<int64_t> columns;
    for (int64_t h : kept)
      for (int64_t j = 0; j < b.head_dim; ++j) columns.push_back(h * b.head_dim + j);
    const int64_t left = static_cast<int64_t>(kept.size());
    for (const ir::Node* n : {b.q, b.k, b.v}) g.slice_initializer(n->input(1)->name, 1, columns);
    for (const ir::Value* bias : {b.q_bias, b.k_bias, b.v_bias})
      if (bias) g.slice_initializer(bias->name, 0, columns);
    g.slice_initializer(b.out->input(1)->name, 0, columns);
    for (ir::Node* r : {b.q_reshape, b.k_reshape, b.v_reshape}) set_target_entry(g, r, 2, left);
    Target merged = target_of(g, b.merge);
    if (merged.entries.back() > 0) set_target_entry(g, b.merge, merged.rank - 1, left * b.head_dim);
    return columns;
  };
  return u;
}

HeadUnit unit_of(ir::Graph& g, const PackedAttentionBlock& b) {
  HeadUnit u;
  u.name = b.name;
  u.heads = b.heads;
  const int64_t heads = b.heads, dh = b.head_dim, e = b.heads * b.head_dim;
  const bool out_columns = b.out->op_type == "Gemm" && b.out->attrs.get_int("transB", 0) != 0;  // Wo [out, E]
  u.weights.push_back({b.in->input(1), [=](const at::Tensor& t) {
                         return t.reshape({e, 3, heads, dh}).sum(at::IntArrayRef{0, 1, 3});
                       }});
  u.weights.push_back({b.out->input(1), [=](const at::Tensor& t) {
                         return out_columns ? t.reshape({t.size(0), heads, dh}).sum(at::IntArrayRef{0, 2})
                                            : t.reshape({heads, dh, t.size(1)}).sum(at::IntArrayRef{1, 2});
                       }});
  if (b.bias)
    u.biases.push_back({b.bias, [=](const at::Tensor& t) { return t.reshape({3, heads, dh}).sum(at::IntArrayRef{0, 2}); }});
  u.projections.push_back(b.in->output(0));
  u.remove = [&g, b, e, dh, out_columns](const std::vector<int64_t>& kept) {
    const int64_t left = static_cast<int64_t>(kept.size()), width = left * dh;
    std::vector<int64_t> merged, packed;
    for (int64_t h : kept)
      for (int64_t j = 0; j < dh; ++j) merged.push_back(h * dh + j);
    for (int64_t part = 0; part < 3; ++part)
      for (int64_t c : merged) packed.push_back(part * e + c);
    g.slice_initializer(b.in->input(1)->name, 1, packed);
    if (b.bias) g.slice_initializer(b.bias->name, 0, packed);
    g.slice_initializer(b.out->input(1)->name, out_columns ? 1 : 0, merged);
    auto constant = [&g](const std::string& name, int64_t v) {
      return g.add_initializer(g.unique_name(name), at::tensor({v}, at::kLong), ir::InitKind::Constant);
    };
    for (int64_t part = 0; part < 3; ++part) {
      ir::Node* slice = b.slices[part];
      g.set_input(slice, 1, constant(slice->name + ".starts", part * width));
      g.set_input(slice, 2, constant(slice->name + ".ends", (part + 1) * width));
      ir::Node* r = b.reshapes[part];
      Target t = target_of(g, r);
      if (t.entries[1] >= 0) {
        set_target_entry(g, r, 1, t.entries[1] / b.heads * left);
        continue;
      }
      ir::Node* mul = r->input(1)->producer->input(1)->producer->input(0)->producer;  // Mul(N, H)
      int64_t c = 0;
      const int side = int_constant(g, mul->input(1), c) ? 1 : 0;
      if (c == b.heads) {  // not yet rewritten through another of the three
        const at::Tensor& old = g.initializer(mul->input(side)->name)->tensor;
        g.set_input(mul, side,
                    g.add_initializer(g.unique_name(mul->name + ".heads"), at::full_like(old, left), ir::InitKind::Constant));
      }
    }
    set_target_entry(g, b.merge, 1, width);
    return packed;
  };
  return u;
}

}  // namespace

void prune_heads(ir::Graph& g, const StructuredOptions& o, StructuredReport& report) {
  std::vector<AttentionBlock> blocks = find_attention_blocks(g, &report.skipped);
  std::vector<PackedAttentionBlock> packed = find_packed_attention_blocks(g, &report.skipped);
  std::vector<HeadUnit> chosen;
  auto take = [&](const std::string& name, int64_t heads) {
    bool take = o.layers.empty() || std::find(o.layers.begin(), o.layers.end(), name) != o.layers.end();
    if (std::find(o.ignored.begin(), o.ignored.end(), name) != o.ignored.end()) {
      report.skipped.push_back("attention '" + name + "': ignored");
      take = false;
    }
    return take && heads > 1;
  };
  for (const AttentionBlock& b : blocks)
    if (take(b.name, b.heads)) chosen.push_back(unit_of(g, b));
  for (const PackedAttentionBlock& b : packed)
    if (take(b.name, b.heads)) chosen.push_back(unit_of(g, b));
  if (chosen.empty()) return;
  if (o.method == "slim") {
    for (const HeadUnit& u : chosen) report.skipped.push_back("attention '" + u.name + "': slim needs a BatchNorm");
    return;
  }
  at::NoGradGuard no_grad;
  auto tensor = [&](const ir::Value* v) { return g.initializer(v->name)->tensor.detach().to(at::kDouble); };
  // Per block, the score of each head: [heads].
  std::vector<at::Tensor> scores;
  for (const HeadUnit& u : chosen) scores.push_back(at::zeros({u.heads}, at::kDouble));
  if (o.method == "random") {
    at::Generator gen = at::detail::createCPUGenerator(o.seed);
    for (size_t i = 0; i < chosen.size(); ++i) scores[i] = at::rand({chosen[i].heads}, gen, at::kDouble);
  } else if (o.method == "l1" || o.method == "l2") {
    auto f = [&](const at::Tensor& t) { return o.method == "l1" ? t.abs() : t.pow(2); };
    for (size_t i = 0; i < chosen.size(); ++i) {
      for (const auto& [w, per_head] : chosen[i].weights) scores[i] += per_head(f(tensor(w)));
      if (o.method == "l2") scores[i].sqrt_();
    }
  } else {  // taylor: (sum of w * dL/dw over the head's parameters)^2, averaged over batches
    SHRINK_CHECK(o.gradients, "taylor importance needs gradients (training data)");
    int64_t batches = 0;
    at::AutoGradMode grad_on(true);
    o.gradients([&](const std::map<std::string, at::Tensor>& grads) {
      at::NoGradGuard off;
      for (size_t i = 0; i < chosen.size(); ++i) {
        const HeadUnit& u = chosen[i];
        at::Tensor first = at::zeros({u.heads}, at::kDouble);
        for (const auto* params : {&u.weights, &u.biases})
          for (const auto& [v, per_head] : *params) {
            auto it = grads.find(v->name);
            if (it != grads.end() && it->second.defined())
              first += per_head(tensor(v) * it->second.detach().to(at::kDouble));
          }
        scores[i] += first.pow(2);
      }
      ++batches;
    });
    SHRINK_CHECK(batches > 0, "taylor importance: no batch of gradients to estimate with");
    for (at::Tensor& s : scores) s /= static_cast<double>(batches);
  }

  for (size_t i = 0; i < chosen.size(); ++i) {
    const HeadUnit& u = chosen[i];
    double amount = o.amount;
    if (auto it = o.layer_amounts.find(u.name); it != o.layer_amounts.end()) amount = it->second;
    int64_t cap = std::min<int64_t>(u.heads - 1, static_cast<int64_t>(std::floor(o.max_ratio * u.heads + 1e-9)));
    int64_t remove = std::min<int64_t>(cap, static_cast<int64_t>(std::nearbyint(amount * u.heads)));
    if (remove <= 0) continue;
    std::vector<int64_t> order(u.heads);
    for (int64_t h = 0; h < u.heads; ++h) order[h] = h;
    at::Tensor s = scores[i].contiguous();
    const double* sp = s.data_ptr<double>();
    std::stable_sort(order.begin(), order.end(), [&](int64_t l, int64_t r) { return sp[l] < sp[r]; });
    std::vector<int64_t> kept_heads(order.begin() + remove, order.end());
    std::sort(kept_heads.begin(), kept_heads.end());
    std::vector<int64_t> columns = u.remove(kept_heads);
    for (const ir::Value* v : u.projections) report.kept[v->name] = columns;
    report.pruned.push_back({u.name + " (heads)", u.heads, static_cast<int64_t>(kept_heads.size())});
  }
  g.remove_unused_values();
  ops::infer_shapes(g);
}

}  // namespace shrink::prune
