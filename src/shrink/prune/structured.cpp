#include "shrink/prune/structured.h"
#include "shrink/prune/heads.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <unordered_map>

#include "shrink/core/error.h"
#include "shrink/ops/shape_inference.h"
#include "shrink/passes/inference_passes.h"

namespace shrink::prune {
namespace {

const std::set<std::string> kChannelwise = {"Relu",      "Clip",        "LeakyRelu",         "Sigmoid",
                                            "Tanh",      "HardSigmoid", "HardSwish",         "Elu",
                                            "Selu",      "Softplus",    "MaxPool",           "AveragePool",
                                            "Identity",  "Dropout",     "GlobalAveragePool", "GlobalMaxPool",
                                            "Neg",       "Abs",         "Exp",               "Sqrt",
                                            "Mish",      "Gelu",        "LpPool",            "GlobalLpPool",
                                            "Erf",       "Reciprocal",  "Softsign",          "Sin",
                                            "Cos"};


// What a parameter's slice along `axis` is to the channels of `value`.
enum class Role { OwnerWeight, OwnerBias, Scale, Shift, Statistic, DepthwiseWeight, DepthwiseBias, Consumer, ChannelParam };

struct ParamUse {
  std::string init;
  int64_t axis;
  const ir::Value* value;
  int64_t block;  // consecutive elements per channel along the axis (H*W after a Flatten)
  Role role;
};

// ShuffleNet's channel shuffle: Reshape [N, g, C/g, H, W] -> Transpose (0 2 1 3 4) -> Reshape [N, C, H, W].
// The reshape targets are constants, or computed from the input's Shape (PyTorch's
// x.view(n, g, c // g, h, w) with a symbolic batch); computed ones are replaced by
// constants with 0 (copy the batch) when the channels change.
struct Shuffle {
  ir::Node* split;
  ir::Node* swap;
  ir::Node* merge;
  int64_t groups;
  // Output channel j reads input channel (j % g) * (C / g) + j / g.
  int64_t source(int64_t j, int64_t c) const { return (j % groups) * (c / groups) + j / groups; }
};

// A Slice of a run of channels (torch.chunk, x[:, a:b]): its bounds are rewritten to
// the surviving channels.
struct ChannelSlice {
  ir::Node* node;
  size_t entry;          // index of the channel axis in starts/ends
  int64_t start, end;    // channels [start, end) of the input, clamped
};

// A Reshape that keeps the channel axis and what precedes it ([N, C, H, W] -> [N, C, H*W]):
// the channel extent in its target is rewritten: entry `entry` of input `input` of `reader`
// (the Reshape's target itself, or one constant piece of a Concat that computes it).
struct Retarget {
  ir::Node* reshape;
  ir::Node* reader;
  size_t input;
  int64_t entry;
};

struct GroupInfo {
  ChannelGroup info;
  std::vector<int64_t> clusters;  // dense cluster ids
};

class Analysis {
 public:
  // embedding: LayerNormalization over the channels ties its input and output channels
  // (and its scale and bias), so the residual stream of a transformer is one group;
  // otherwise it fixes them.
  explicit Analysis(const ir::Graph& graph, bool embedding = false);

  const ir::Graph& g;
  std::vector<ParamUse> params;
  std::vector<std::pair<ir::Node*, int64_t>> grouped;  // grouped/depthwise Conv, output channels per group
  std::vector<ir::Node*> splits;
  std::vector<ChannelSlice> slices;
  std::vector<Shuffle> shuffles;
  std::vector<Retarget> retargets;
  std::map<const ir::Value*, std::pair<const ir::Value*, int64_t>> flattened;  // Flatten output -> (source, H*W)
  std::vector<GroupInfo> groups;
  int64_t clusters = 0;
  std::vector<char> removable;    // per cluster
  std::vector<std::string> why;   // per cluster: why it is fixed

  // The axis of a value that carries its channels: 1 for NCHW, the last one after a
  // Transpose to channels-last (ConvNeXt's blocks) and for a MatMul's features
  // ([batch, tokens, features] in transformers).
  int64_t axis_of(const ir::Value* v) const {
    auto it = axis_.find(v);
    return it != axis_.end() ? it->second : 1;
  }
  bool has_channels(const ir::Value* v) const {
    if (!v || !v->type.has_shape || v->type.rank() < 2) return false;
    int64_t a = axis_of(v);
    return a < v->type.rank() && v->type.dims[a] > 0;
  }
  int64_t channels_of(const ir::Value* v) const { return v->type.dims[axis_of(v)]; }
  // The channel axis of both, and equal extents on it.
  bool same_channels(const ir::Value* x, const ir::Value* y) const {
    return has_channels(x) && has_channels(y) && channels_of(x) == channels_of(y);
  }

  bool tracked(const ir::Value* v) const { return base_.count(v) > 0; }
  // Cluster id of each channel of a tracked value.
  std::vector<int64_t> ids(const ir::Value* v) const {
    int64_t b = base_.at(v);
    return std::vector<int64_t>(cluster_.begin() + b, cluster_.begin() + b + channels_of(v));
  }
  std::vector<const ir::Value*> values() const {
    std::vector<const ir::Value*> out;
    for (auto& [v, b] : base_) out.push_back(v);
    return out;
  }

 private:
  int64_t slots(const ir::Value* v) {
    auto it = base_.find(v);
    if (it != base_.end()) return it->second;
    int64_t b = static_cast<int64_t>(parent_.size());
    base_[v] = b;
    for (int64_t i = 0; i < channels_of(v); ++i) {
      parent_.push_back(b + i);
      fixed_.emplace_back();
      owned_.push_back(0);
    }
    return b;
  }
  int64_t find(int64_t s) {
    while (parent_[s] != s) s = parent_[s] = parent_[parent_[s]];
    return s;
  }
  void unite(int64_t a, int64_t b) {
    a = find(a), b = find(b);
    if (a == b) return;
    parent_[b] = a;
    if (fixed_[a].empty()) fixed_[a] = fixed_[b];
    owned_[a] = owned_[a] || owned_[b];
  }
  void unite_values(const ir::Value* x, const ir::Value* y) {
    if (!has_channels(x) || !has_channels(y) || channels_of(x) != channels_of(y)) {
      fix(x, "channels on different axes");
      fix(y, "channels on different axes");
      return;
    }
    int64_t bx = slots(x), by = slots(y);
    for (int64_t i = 0; i < channels_of(x); ++i) unite(bx + i, by + i);
  }
  void fix(const ir::Value* v, const std::string& reason) {
    if (auto it = flattened.find(v); it != flattened.end()) v = it->second.first;
    if (!has_channels(v) || g.is_initializer(v)) return;
    int64_t b = slots(v);
    for (int64_t i = 0; i < channels_of(v); ++i) {
      int64_t r = find(b + i);
      if (fixed_[r].empty()) fixed_[r] = reason;
    }
  }
  void fix_node(const ir::Node& n, const std::string& reason) {
    for (ir::Value* v : n.inputs()) fix(v, reason);
    for (ir::Value* v : n.outputs()) fix(v, reason);
  }
  void own(const ir::Value* y) {
    int64_t b = slots(y);
    for (int64_t i = 0; i < channels_of(y); ++i) owned_[find(b + i)] = 1;
  }
  // A trained initializer that only this use reads (so slicing it changes nothing else).
  bool sliceable(const ir::Value* v, bool trained) const {
    const ir::Initializer* init = v ? g.initializer(v->name) : nullptr;
    return init && (!trained || init->kind == ir::InitKind::Parameter) && v->users.size() == 1;
  }
  // The channels a Gemm/MatMul input carries: its own (rank 2) or a Flatten's source in H*W blocks.
  bool features(const ir::Value* x, const ir::Value*& source, int64_t& block) const {
    if (auto it = flattened.find(x); it != flattened.end()) {
      source = it->second.first, block = it->second.second;
      return true;
    }
    source = x, block = 1;
    return has_channels(x) && axis_of(x) == x->type.rank() - 1 && !g.is_initializer(x);
  }
  bool match_shuffle(ir::Node& reshape, Shuffle& s) const;
  void visit_slice(ir::Node& n);
  bool visit_reshape(ir::Node& n);
  bool visit_concat_off_axis(ir::Node& n, int64_t axis);
  bool embedding_ = false;
  void visit(ir::Node& n, std::set<const ir::Node*>& handled);
  void finish();

  void compute_axes();
  std::unordered_map<const ir::Value*, int64_t> axis_;
  std::set<const ir::Value*> from_constants;
  std::map<const ir::Value*, int64_t> base_;
  std::vector<int64_t> parent_;
  std::vector<std::string> fixed_;
  std::vector<char> owned_;
  std::vector<int64_t> cluster_;  // slot -> dense cluster id
};

void Analysis::compute_axes() {
  for (const auto& np : g.nodes()) {
    const ir::Node& n = *np;
    const ir::Value* x = n.inputs().empty() ? nullptr : n.input(0);
    if (!x || n.outputs().empty() || !n.output(0) || !n.output(0)->type.has_shape) continue;
    const ir::Value* y = n.output(0);
    // Computed from initializers and shapes alone (a class token's Expand to the batch):
    // no layout of its own.
    bool constant = true;
    for (const ir::Value* in : n.inputs())
      constant = constant && (!in || g.is_initializer(in) || from_constants.count(in) ||
                              !at::isFloatingType(in->type.dtype));
    if (constant) {
      for (const ir::Value* v : n.outputs())
        if (v) from_constants.insert(v);
      continue;
    }
    const int64_t ax = axis_of(x);
    int64_t out = 1;  // (a new layout: a Reshape, Flatten or reduction to another rank)
    if (n.op_type == "Transpose") {
      std::vector<int64_t> perm = n.attrs.get_ints("perm");
      for (size_t j = 0; j < perm.size(); ++j)
        if (perm[j] == ax) out = static_cast<int64_t>(j);
    } else if ((n.op_type == "MatMul" || n.op_type == "Gemm") && n.input(1) && g.is_initializer(n.input(1))) {
      out = y->type.rank() - 1;
    } else {
      // The activations of the output's rank agree on the axis (else none: out of range).
      bool first = true;
      for (const ir::Value* in : n.inputs()) {
        if (!in || g.is_initializer(in) || from_constants.count(in) || !in->type.has_shape ||
            in->type.rank() != y->type.rank())
          continue;
        if (first) out = axis_of(in);
        else if (axis_of(in) != out) out = y->type.rank();
        first = false;
      }
      // A reshape that keeps the last axis ([N*S, D] -> [N, S, D]) keeps features there.
      if (first && x->type.has_shape && ax == x->type.rank() - 1 && y->type.rank() >= 2 &&
          x->type.dims.back() > 0 && x->type.dims.back() == y->type.dims.back())
        out = y->type.rank() - 1;
    }
    if (out != 1)
      for (const ir::Value* v : n.outputs())
        if (v) axis_[v] = out;
  }
}

Analysis::Analysis(const ir::Graph& graph, bool embedding) : g(graph), embedding_(embedding) {
  compute_axes();

  std::set<const ir::Node*> handled;
  for (const auto& np : g.nodes())
    if (!handled.count(np.get())) visit(*np, handled);
  for (ir::Value* v : g.inputs()) fix(v, "graph input '" + v->name + "'");
  for (ir::Value* v : g.outputs()) fix(v, "graph output '" + v->name + "'");
  finish();
}

bool Analysis::match_shuffle(ir::Node& r1, Shuffle& s) const {
  ir::Value* x = r1.input(0);
  ir::Value* mid = r1.output(0);
  if (!has_channels(x) || axis_of(x) != 1 || x->type.rank() != 4 || !mid->type.has_shape || mid->type.rank() != 5)
    return false;
  // A computed target is rewritten as a constant: the spatial extents must be known.
  const bool spatial = x->type.dims[2] > 0 && x->type.dims[3] > 0;
  if (!(sliceable(r1.input(1), false) || spatial) || mid->users.size() != 1 || g.is_graph_output(mid)) return false;
  const auto& d = mid->type.dims;
  if (d[1] <= 0 || d[2] <= 0 || d[1] * d[2] != channels_of(x) || d[3] != x->type.dims[2] || d[4] != x->type.dims[3])
    return false;
  ir::Node* t = mid->users[0];
  if (t->op_type != "Transpose" || t->attrs.get_ints("perm") != std::vector<int64_t>{0, 2, 1, 3, 4}) return false;
  ir::Value* swapped = t->output(0);
  if (swapped->users.size() != 1 || g.is_graph_output(swapped)) return false;
  ir::Node* r2 = swapped->users[0];
  if (r2->op_type != "Reshape" || r2->input(0) != swapped || !(sliceable(r2->input(1), false) || spatial)) return false;
  if (!r2->output(0)->type.has_shape || r2->output(0)->type.dims != x->type.dims) return false;
  s = {&r1, t, r2, d[1]};
  return true;
}

void Analysis::visit_slice(ir::Node& n) {
  ir::Value* x = n.input(0);
  ir::Value* y = n.output(0);
  const std::string why = n.describe() + " slices the channels with bounds that are not constants";
  std::vector<std::vector<int64_t>> args;  // starts, ends, axes, steps
  for (size_t i = 1; i < 5; ++i) {
    const ir::Initializer* init = i < n.inputs().size() && n.input(i) ? g.initializer(n.input(i)->name) : nullptr;
    if (i < 3 && !init) return fix_node(n, why);
    if (init) {
      at::Tensor t = init->tensor.to(at::kLong).contiguous();
      args.emplace_back(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
    } else {
      args.emplace_back();
    }
  }
  if (!has_channels(x) || !has_channels(y) || g.is_initializer(x) || y->type.rank() != x->type.rank())
    return fix_node(n, n.describe() + " has no channel rule");
  const int64_t rank = x->type.rank();
  for (size_t k = 0; k < args[0].size(); ++k) {
    int64_t axis = args[2].empty() ? static_cast<int64_t>(k) : args[2].at(k);
    if (axis < 0) axis += rank;
    if (axis != axis_of(x)) continue;
    int64_t step = args[3].empty() ? 1 : args[3].at(k);
    const int64_t c = channels_of(x);
    auto clamp = [c](int64_t v) { return std::clamp(v < 0 ? v + c : v, int64_t{0}, c); };
    int64_t start = clamp(args[0].at(k)), end = clamp(args[1].at(k));
    if (step != 1 || end - start != channels_of(y)) return fix_node(n, n.describe() + " slices the channels with a step");
    int64_t bx = slots(x), by = slots(y);
    for (int64_t i = 0; i < end - start; ++i) unite(bx + start + i, by + i);
    slices.push_back({&n, k, start, end});
    return;
  }
  if (channels_of(x) != channels_of(y)) return fix_node(n, n.describe() + " has no channel rule");
  unite_values(x, y);  // a slice of other axes carries every channel through
}

bool Analysis::visit_reshape(ir::Node& n) {
  ir::Value* x = n.input(0);
  ir::Value* y = n.output(0);
  if (!has_channels(x) || !has_channels(y) || g.is_initializer(x) || n.inputs().size() < 2) return false;
  const int64_t a = axis_of(x);
  if (channels_of(y) != channels_of(x)) return false;
  // Either the channels stay last and only the leading extents change ([T*N, E] <->
  // [T, N, E]), or they keep their axis and what precedes it ([N, C, H, W] -> [N, C, H*W]).
  const bool last = a == x->type.rank() - 1 && axis_of(y) == y->type.rank() - 1;
  bool kept = axis_of(y) == a;
  for (int64_t i = 0; kept && i < a; ++i)  // (a symbolic batch too)
    kept = x->type.dims[i] == y->type.dims[i] && (x->type.dims[i] >= 0 || i == 0);
  if (!last && !kept) return false;
  // The entry of the target that holds the channel extent.
  ir::Value* target = n.input(1);
  ir::Node* reader = &n;
  size_t input = 1;
  int64_t entry = axis_of(y);
  if (!g.initializer(target->name)) {
    ir::Node* cat = target->producer;
    if (!cat || cat->op_type != "Concat" || target->users.size() != 1) return false;
    int64_t offset = 0;
    target = nullptr;
    const int64_t at_axis = entry;
    for (size_t i = 0; i < cat->inputs().size(); ++i) {
      ir::Value* piece = cat->input(i);
      if (!piece || !piece->type.has_shape || piece->type.rank() != 1 || piece->type.dims[0] < 0) return false;
      if (offset <= at_axis && at_axis < offset + piece->type.dims[0]) {
        target = piece, entry = at_axis - offset, reader = cat, input = i;
        break;
      }
      offset += piece->type.dims[0];
    }
    if (!target || !g.initializer(target->name)) return false;
  }
  const at::Tensor& t = g.initializer(target->name)->tensor;
  if (t.dim() != 1 || entry >= t.numel()) return false;
  const int64_t held = t.to(at::kLong)[entry].item<int64_t>();
  // 0 copies the input's extent at that index (the channels' only when the axis is kept);
  // -1 would be computed from the rest.
  if (held != channels_of(x) && !(held == 0 && axis_of(y) == a)) return false;
  if (!embedding_) {
    fix_node(n, n.describe() + " carries the channels into tokens (prune the embedding width with --embedding)");
    return true;
  }
  unite_values(x, y);
  if (held > 0) retargets.push_back({&n, reader, input, entry});
  return true;
}

// Concat along another axis than the channels' (a class token before the patches): every
// input carries the same channels; a constant input (an initializer, or one Expand'ed to
// the batch) is sliced with them.
bool Analysis::visit_concat_off_axis(ir::Node& n, int64_t axis) {
  ir::Value* y = n.output(0);
  if (!has_channels(y) || axis == axis_of(y)) return false;
  const int64_t a = axis_of(y), c = channels_of(y);
  std::vector<ParamUse> constants;
  std::vector<ir::Value*> activations;
  for (ir::Value* v : n.inputs()) {
    if (!v || !v->type.has_shape || v->type.rank() != y->type.rank() || v->type.dims[a] != c) return false;
    ir::Value* source = v;
    if (from_constants.count(v) && v->producer && v->producer->op_type == "Expand") source = v->producer->input(0);
    if (g.is_initializer(source)) {
      const at::Tensor& t = g.initializer(source->name)->tensor;
      if (t.dim() != y->type.rank() || t.size(a) != c || !sliceable(source, false)) return false;
      if (source != v && v->users.size() != 1) return false;
      constants.push_back({source->name, a, y, 1, Role::ChannelParam});
    } else if (from_constants.count(v)) {
      return false;
    } else {
      if (axis_of(v) != a) return false;
      activations.push_back(v);
    }
  }
  if (activations.empty()) return false;
  for (ir::Value* v : activations) unite_values(v, y);
  for (ParamUse& p : constants) params.push_back(p);
  return true;
}

void Analysis::visit(ir::Node& n, std::set<const ir::Node*>& handled) {
  const std::string& op = n.op_type;
  bool reads_activation = false;
  for (ir::Value* v : n.inputs()) reads_activation = reads_activation || (v && !g.is_initializer(v));
  if (!reads_activation) return;  // constant subgraph (e.g. a soft mask's Mul(weight, mask))
  ir::Value* x = n.input(0);
  ir::Value* y = n.output(0);
  const std::string no_rule = n.describe() + " has no channel rule";

  if (op == "Conv" || op == "ConvTranspose") {
    bool ok = has_channels(x) && has_channels(y) && axis_of(x) == 1 && !g.is_initializer(x) && sliceable(n.input(1), true) &&
              (!n.input(2) || sliceable(n.input(2), true));
    if (!ok) return fix_node(n, n.describe() + ": weight not a trained initializer of its own");
    int64_t group = n.attrs.get_int("group", 1);
    bool transposed = op == "ConvTranspose";
    if (group == 1) {
      own(y);
      slots(x);
      params.push_back({n.input(1)->name, transposed ? 1 : 0, y, 1, Role::OwnerWeight});
      if (n.input(2)) params.push_back({n.input(2)->name, 0, y, 1, Role::OwnerBias});
      params.push_back({n.input(1)->name, transposed ? 0 : 1, x, 1, Role::Consumer});
    } else if (!transposed && channels_of(x) % group == 0 && channels_of(y) % group == 0) {
      // Grouped (depthwise when each group has one channel): a group's input and output
      // channels live and die together, and the conv keeps as many groups as survive.
      int64_t in_per = channels_of(x) / group, out_per = channels_of(y) / group;
      int64_t bx = slots(x), by = slots(y);
      for (int64_t grp = 0; grp < group; ++grp) {
        for (int64_t i = 0; i < in_per; ++i) unite(by + grp * out_per, bx + grp * in_per + i);
        for (int64_t o = 1; o < out_per; ++o) unite(by + grp * out_per, by + grp * out_per + o);
      }
      grouped.push_back({&n, out_per});
      params.push_back({n.input(1)->name, 0, y, 1, Role::DepthwiseWeight});
      if (n.input(2)) params.push_back({n.input(2)->name, 0, y, 1, Role::DepthwiseBias});
    } else {
      fix_node(n, n.describe() + " is a grouped transposed convolution");
    }
  } else if (op == "Gemm" || op == "MatMul") {
    const ir::Value* source = nullptr;
    int64_t block = 1;
    bool ok = has_channels(y) && axis_of(y) == y->type.rank() - 1 && sliceable(n.input(1), true) &&
              n.input(1)->type.rank() == 2;
    bool transposed = false;  // weight stored [out, in]
    if (op == "Gemm") {
      transposed = n.attrs.get_int("transB", 0) != 0;
      ok = ok && n.attrs.get_int("transA", 0) == 0 &&
           (!n.input(2) || (sliceable(n.input(2), true) && n.input(2)->type.rank() == 1 &&
                            n.input(2)->type.dims[0] == channels_of(y)));
    }
    // With embedding, inputs whose channels are not tracked (merged attention heads) keep
    // them all while the layer's own output channels can still go.
    const bool tracked_input = features(x, source, block);
    if (!ok || (!tracked_input && !embedding_))
      return fix_node(n, n.describe() + ": not a layer with a trained weight of its own on [batch, features]");
    own(y);
    params.push_back({n.input(1)->name, transposed ? 0 : 1, y, 1, Role::OwnerWeight});
    if (n.input(2)) params.push_back({n.input(2)->name, 0, y, 1, Role::OwnerBias});
    if (tracked_input) {
      slots(source);
      params.push_back({n.input(1)->name, transposed ? 1 : 0, source, block, Role::Consumer});
    } else {
      fix(x, n.describe() + " reads them on an axis other than the last");
    }
  } else if (op == "Flatten") {
    bool ok = has_channels(x) && axis_of(x) == 1 && x->type.rank() == 4 && n.attrs.get_int("axis", 1) == 1 && x->type.dims[2] > 0 &&
              x->type.dims[3] > 0 && !y->users.empty() && !g.is_graph_output(y);
    for (ir::Node* u : y->users) ok = ok && (u->op_type == "Gemm" || u->op_type == "MatMul") && u->input(0) == y;
    if (!ok) return fix(x, n.describe() + " feeds something other than a Gemm or MatMul");
    slots(x);
    flattened[y] = {x, x->type.dims[2] * x->type.dims[3]};
  } else if (op == "BatchNormalization" || op == "InstanceNormalization") {
    int last = op == "BatchNormalization" ? 4 : 2;
    bool ok = has_channels(x) && has_channels(y) && axis_of(x) == 1;
    for (int i = 1; i <= last; ++i) ok = ok && sliceable(n.input(i), false);
    if (!ok) return fix_node(n, n.describe() + ": parameters not initializers of its own");
    unite_values(x, y);
    const Role roles[] = {Role::Scale, Role::Shift, Role::Statistic, Role::Statistic};
    for (int i = 1; i <= last; ++i) params.push_back({n.input(i)->name, 0, y, 1, roles[i - 1]});
    for (size_t i = 1; i < n.outputs().size(); ++i) fix(n.output(i), n.describe() + " exposes its statistics");
  } else if (op == "LayerNormalization") {
    int64_t axis = n.attrs.get_int("axis", -1);
    bool over_channels = has_channels(x) && (axis < 0 ? axis + x->type.rank() : axis) == x->type.rank() - 1 &&
                         axis_of(x) == x->type.rank() - 1 && same_channels(x, y);
    if (!over_channels) return fix_node(n, no_rule);
    if (!embedding_) return fix_node(n, n.describe() + " normalizes the embedding width (prune it with --embedding)");
    bool ok = sliceable(n.input(1), false) && (n.inputs().size() < 3 || !n.input(2) || sliceable(n.input(2), false));
    for (size_t i = 1; i < n.outputs().size(); ++i)
      ok = ok && n.output(i) && n.output(i)->users.empty() && !g.is_graph_output(n.output(i));
    if (!ok) return fix_node(n, n.describe() + ": scale or bias shared, or statistics used");
    // As Torch-Pruning: the statistics are then taken over the channels that remain.
    unite_values(x, y);
    params.push_back({n.input(1)->name, 0, y, 1, Role::Scale});
    if (n.inputs().size() > 2 && n.input(2)) params.push_back({n.input(2)->name, 0, y, 1, Role::Shift});
  } else if (op == "Gather" && embedding_ && has_channels(x) && has_channels(y) && n.input(1) && g.initializer(n.input(1)->name) &&
             g.initializer(n.input(1)->name)->tensor.dim() <= 1) {
    // Picking tokens (the class token) on another axis: the channels pass through.
    int64_t axis = n.attrs.get_int("axis", 0);
    if (axis < 0) axis += x->type.rank();
    if (axis == axis_of(x) || axis == 0 || channels_of(x) != channels_of(y)) return fix_node(n, no_rule);
    unite_values(x, y);
  } else if (kChannelwise.count(op) && has_channels(x) && has_channels(y) && channels_of(x) == channels_of(y)) {
    unite_values(x, y);
    for (size_t i = 1; i < n.outputs().size(); ++i)
      if (!n.output(i)->users.empty() || g.is_graph_output(n.output(i))) fix_node(n, n.describe() + ": second output used");
  } else if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "Pow") {
    ir::Value* a = n.input(0);
    ir::Value* b = n.input(1);
    if (!g.is_initializer(a) && !g.is_initializer(b)) {
      if (has_channels(a) && has_channels(b) && a->type.dims == b->type.dims && y->type.dims == a->type.dims &&
          axis_of(a) == axis_of(b) && axis_of(a) == axis_of(y)) {
        unite_values(a, b);
        unite_values(a, y);
        return;
      }
      // One operand broadcast across the channels (LayerNorm's x - mean(x)): the other's
      // channels pass through.
      auto across = [&](const ir::Value* full, const ir::Value* one) {
        if (!has_channels(full) || !one->type.has_shape || y->type.dims != full->type.dims) return false;
        int64_t k = axis_of(full) - (full->type.rank() - one->type.rank());
        return k < 0 || (k < one->type.rank() && one->type.dims[k] == 1);
      };
      if (across(a, b)) return unite_values(a, y);
      if (across(b, a)) return unite_values(b, y);
      return fix_node(n, n.describe() + ": operands of different shapes");
    }
    ir::Value* act = g.is_initializer(a) ? b : a;
    ir::Value* c = g.is_initializer(a) ? a : b;
    if (!has_channels(act) || !has_channels(y) || act->type.dims != y->type.dims) return fix_node(n, no_rule);
    const at::Tensor& t = g.initializer(c->name)->tensor;
    if (t.numel() == 1) return unite_values(act, y);
    // A per-channel constant (a bias [C], or [C, 1, 1] on images): sliced with the channels.
    // Other extents may be 1 or the activation's own (learned positions [1, T, D]).
    const int64_t lead = act->type.rank() - t.dim();
    int64_t axis = axis_of(act) - lead;
    bool per_channel = axis >= 0 && t.size(axis) == channels_of(act) && sliceable(c, false);
    for (int64_t i = 0; per_channel && i < t.dim(); ++i)
      per_channel = i == axis || t.size(i) == 1 || (embedding_ && t.size(i) == act->type.dims[lead + i]);
    if (!per_channel) return fix_node(n, n.describe() + ": constant operand does not broadcast per channel");
    unite_values(act, y);
    params.push_back({c->name, axis, y, 1, Role::ChannelParam});
  } else if (op == "Concat") {
    bool ok = has_channels(y);
    for (ir::Value* v : n.inputs())
      ok = ok && has_channels(v) && !g.is_initializer(v) && v->type.rank() == y->type.rank();
    int64_t axis = n.attrs.get_int("axis", 0);
    if (ok && axis < 0) axis += y->type.rank();
    if (ok && embedding_ && axis != axis_of(y) && visit_concat_off_axis(n, axis)) return;
    if (!ok || axis != axis_of(y)) return fix_node(n, n.describe() + (ok ? " is not on the channel axis" : ": operands without channels"));
    int64_t by = slots(y), offset = 0;
    for (ir::Value* v : n.inputs()) {
      int64_t bv = slots(v);
      for (int64_t i = 0; i < channels_of(v); ++i) unite(bv + i, by + offset + i);
      offset += channels_of(v);
    }
    SHRINK_CHECK(offset == channels_of(y), n.describe(), ": output has ", channels_of(y), " channels, inputs ", offset);
  } else if (op == "Split") {
    int64_t axis = n.attrs.get_int("axis", 0);
    bool ok = has_channels(x) && !g.is_initializer(x) && (!n.input(1) || sliceable(n.input(1), false));
    if (ok && axis < 0) axis += x->type.rank();
    int64_t offset = 0;
    for (ir::Value* v : n.outputs()) ok = ok && has_channels(v) && (offset += channels_of(v), true);
    if (!ok || axis != axis_of(x) || offset != channels_of(x))
      return fix_node(n, n.describe() + " does not split the channels into known parts");
    int64_t bx = slots(x);
    offset = 0;
    for (ir::Value* v : n.outputs()) {
      int64_t bv = slots(v);
      for (int64_t i = 0; i < channels_of(v); ++i) unite(bx + offset + i, bv + i);
      offset += channels_of(v);
    }
    splits.push_back(&n);
  } else if (op.rfind("Reduce", 0) == 0 && has_channels(x)) {
    // Pooling written as a reduction (x.mean([2, 3])): the channels pass through when
    // neither the batch nor the channel axis is reduced. A reduction over the channels
    // (LayerNorm's mean and variance) reads them and carries none: as Torch-Pruning
    // does, the statistics are then taken over the channels that remain.
    std::vector<int64_t> axes = n.attrs.get_ints("axes");
    const ir::Initializer* given = n.inputs().size() > 1 && n.input(1) ? g.initializer(n.input(1)->name) : nullptr;
    if (given) {
      at::Tensor t = given->tensor.to(at::kLong).contiguous();
      axes.assign(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
    }
    bool ok = !axes.empty() && (n.inputs().size() < 2 || !n.input(1) || given);
    bool over_channels = false;
    for (int64_t a : axes) {
      a = a < 0 ? a + x->type.rank() : a;
      ok = ok && a != 0;
      over_channels = over_channels || a == axis_of(x);
    }
    const bool mean_like = op == "ReduceMean" || op == "ReduceSum" || op == "ReduceSumSquare" || op == "ReduceMax" ||
                           op == "ReduceMin";
    if (!ok || (over_channels && !mean_like)) return fix_node(n, n.describe() + " reduces the batch or channel axis");
    if (over_channels) return;
    if (!same_channels(x, y)) return fix_node(n, n.describe() + " has no channel rule");
    unite_values(x, y);
  } else if (op == "Transpose" && same_channels(x, y)) {
    unite_values(x, y);  // the channels move to another axis
  } else if (op == "Shape") {
    // Reading extents other than the channels' (the batch of a view(n, ...)) ties nothing.
    // Shape(x, start=0, end=e) with e at or before the channel axis reads none of it.
    int64_t end = n.attrs.get_int("end", x->type.has_shape ? x->type.rank() : 0);
    if (has_channels(x) && end < 0) end += x->type.rank();
    if (embedding_ && has_channels(x) && n.attrs.get_int("start", 0) == 0 && n.attrs.has("end") && end <= axis_of(x) &&
        !g.is_graph_output(y))
      return;
    bool other_axes = n.attrs.get_int("start", 0) == 0 && !n.attrs.has("end") && has_channels(x);
    for (ir::Node* u : y->users) {
      const ir::Initializer* idx = u->inputs().size() > 1 && u->input(1) ? g.initializer(u->input(1)->name) : nullptr;
      bool ok = u->op_type == "Gather" && u->input(0) == y && u->attrs.get_int("axis", 0) == 0 && idx;
      if (ok) {
        at::Tensor i = idx->tensor.to(at::kLong).flatten();
        const int64_t c = axis_of(x);
        for (int64_t k = 0; k < i.numel(); ++k) ok = ok && i[k].item<int64_t>() != c && i[k].item<int64_t>() != c - x->type.rank();
      }
      other_axes = other_axes && ok;
    }
    if (!other_axes || g.is_graph_output(y)) fix(x, n.describe() + " reads the channel count");
  } else if (op == "Slice") {
    visit_slice(n);
  } else if (op == "Reshape" && visit_reshape(n)) {
    // channels kept on their axis; the target's extent is rewritten
  } else if (Shuffle s; op == "Reshape" && match_shuffle(n, s)) {
    ir::Value* out = s.merge->output(0);
    int64_t bx = slots(x), by = slots(out), c = channels_of(x);
    for (int64_t j = 0; j < c; ++j) unite(bx + s.source(j, c), by + j);
    shuffles.push_back(s);
    handled.insert(s.swap);
    handled.insert(s.merge);
  } else {
    fix_node(n, no_rule);
  }
}

void Analysis::finish() {
  // Dense cluster ids.
  std::map<int64_t, int64_t> id_of_root;
  cluster_.resize(parent_.size());
  for (size_t s = 0; s < parent_.size(); ++s) {
    int64_t r = find(static_cast<int64_t>(s));
    auto [it, fresh] = id_of_root.try_emplace(r, static_cast<int64_t>(id_of_root.size()));
    cluster_[s] = it->second;
    if (fresh) {
      bool ok = owned_[r] && fixed_[r].empty();
      removable.push_back(ok);
      why.push_back(!fixed_[r].empty() ? fixed_[r] : owned_[r] ? "" : "no Conv, Gemm or MatMul creates these channels");
    }
  }
  clusters = static_cast<int64_t>(id_of_root.size());

  // Groups: values joined through shared clusters.
  std::vector<const ir::Value*> vals = values();
  std::map<const ir::Value*, size_t> index;
  for (size_t i = 0; i < vals.size(); ++i) index[vals[i]] = i;
  std::vector<size_t> up(vals.size());
  std::iota(up.begin(), up.end(), 0);
  auto root = [&](size_t i) {
    while (up[i] != i) i = up[i] = up[up[i]];
    return i;
  };
  std::vector<int64_t> first_value(clusters, -1);
  for (size_t i = 0; i < vals.size(); ++i)
    for (int64_t c : ids(vals[i])) {
      if (first_value[c] < 0) first_value[c] = static_cast<int64_t>(i);
      up[root(i)] = root(static_cast<size_t>(first_value[c]));
    }
  std::map<const ir::Node*, size_t> pos;
  for (size_t i = 0; i < g.nodes().size(); ++i) pos[g.nodes()[i].get()] = i;
  std::map<size_t, GroupInfo> by_root;
  for (size_t i = 0; i < vals.size(); ++i) by_root[root(i)].info.values.push_back(const_cast<ir::Value*>(vals[i]));
  std::map<const ir::Value*, size_t> group_of_value;
  for (size_t i = 0; i < vals.size(); ++i) group_of_value[vals[i]] = root(i);
  std::set<std::pair<size_t, const ir::Node*>> owner_seen;
  for (const ParamUse& p : params) {
    if (p.role != Role::OwnerWeight) continue;
    ir::Node* owner = p.value->producer;
    size_t gi = group_of_value.at(p.value);
    if (owner_seen.insert({gi, owner}).second) by_root[gi].info.owners.push_back(owner);
  }
  for (int64_t c = 0; c < clusters; ++c) by_root[root(static_cast<size_t>(first_value[c]))].clusters.push_back(c);
  for (auto& [r, grp] : by_root) {
    ChannelGroup& info = grp.info;
    std::sort(info.owners.begin(), info.owners.end(), [&](auto* l, auto* r2) { return pos[l] < pos[r2]; });
    std::sort(info.values.begin(), info.values.end(), [](auto* l, auto* r2) { return l->name < r2->name; });
    info.name = info.owners.empty() ? info.values.front()->name : info.owners.front()->name;
    info.clusters = static_cast<int64_t>(grp.clusters.size());
    for (int64_t c : grp.clusters) {
      info.removable += removable[c];
      if (!removable[c] && info.reason.empty()) info.reason = why[c];
    }
    groups.push_back(std::move(grp));
  }
  auto key = [&](const GroupInfo& gi) { return gi.info.owners.empty() ? g.nodes().size() : pos[gi.info.owners.front()]; };
  std::stable_sort(groups.begin(), groups.end(), [&](const GroupInfo& l, const GroupInfo& r) { return key(l) < key(r); });
}

// Sum of a tensor over everything but `axis`, per channel (channels * block elements on the axis).
at::Tensor per_channel(const at::Tensor& t, int64_t axis, int64_t channels) {
  return t.transpose(0, axis).reshape({channels, -1}).sum(1);
}

std::vector<int64_t> expand(const std::vector<int64_t>& keep, int64_t block) {
  std::vector<int64_t> out;
  out.reserve(keep.size() * block);
  for (int64_t i : keep)
    for (int64_t j = 0; j < block; ++j) out.push_back(i * block + j);
  return out;
}

bool is_owner_of_group(const GroupInfo& grp, const std::string& name) {
  for (ir::Node* n : grp.info.owners)
    if (n->name == name) return true;
  return false;
}

}  // namespace

void unshare_parameters(ir::Graph& g) {
  std::vector<std::string> shared;
  for (const auto& [name, init] : g.initializers())
    if (init.kind == ir::InitKind::Parameter && g.value(name)->users.size() > 1) shared.push_back(name);
  for (const std::string& name : shared) {
    ir::Value* v = g.value(name);
    std::vector<ir::Node*> users;
    for (ir::Node* u : v->users)
      if (std::find(users.begin(), users.end(), u) == users.end()) users.push_back(u);
    bool first = true;
    for (ir::Node* user : users)
      for (size_t i = 0; i < user->inputs().size(); ++i) {
        if (user->input(i) != v) continue;
        if (first) {
          first = false;
          continue;
        }
        const ir::Initializer* init = g.initializer(name);
        ir::Value* copy = g.add_initializer(g.unique_name(name + "_" + user->name), init->tensor.detach().clone(),
                                            ir::InitKind::Parameter);
        g.initializer(copy->name)->tensor.requires_grad_(init->tensor.requires_grad());
        g.set_input(user, i, copy);
      }
  }
}

std::vector<ChannelGroup> channel_groups(const ir::Graph& g, bool embedding) {
  Analysis a(g, embedding);
  std::vector<ChannelGroup> out;
  for (auto& grp : a.groups) out.push_back(grp.info);
  return out;
}

StructuredReport prune_structured(ir::Graph& g, const StructuredOptions& o) {
  SHRINK_CHECK(o.amount >= 0.0 && o.amount < 1.0, "--amount must be in [0, 1), got ", o.amount);
  SHRINK_CHECK(o.method == "l1" || o.method == "l2" || o.method == "slim" || o.method == "taylor" || o.method == "random",
               "--method: '", o.method, "' is not a structured method (l1, l2, slim, taylor, random)");
  SHRINK_CHECK(o.round_to >= 1, "--round-to must be at least 1, got ", o.round_to);
  SHRINK_CHECK(o.max_ratio > 0.0 && o.max_ratio <= 1.0, "--max-ratio must be in (0, 1], got ", o.max_ratio);
  SHRINK_CHECK(o.method != "taylor" || o.gradients, "taylor importance needs gradients (training data)");
  for (const auto& [name, amount] : o.layer_amounts)
    SHRINK_CHECK(amount >= 0.0 && amount < 1.0, "--layer-amount: ", name, "=", amount, " is not in [0, 1)");
  for (const auto& name : o.ignored)
    SHRINK_CHECK(g.find_node(name), "--ignore: no node named '", name, "' in the model");

  unshare_parameters(g);
  StructuredReport report;
  prune_heads(g, o, report);  // whole attention heads first; their channels stay fixed below
  Analysis a(g, o.embedding);

  // Which groups are pruned, and by how much.
  std::vector<double> amount(a.groups.size(), o.amount);
  std::vector<char> eligible(a.groups.size(), 1);
  auto check_named = [&](const std::string& flag, const std::string& name) -> size_t {
    SHRINK_CHECK(g.find_node(name), flag, ": no node named '", name, "' in the model");
    for (size_t i = 0; i < a.groups.size(); ++i) {
      if (!is_owner_of_group(a.groups[i], name)) continue;
      SHRINK_CHECK(a.groups[i].info.prunable(), flag, ": cannot prune the output channels of '", name,
                   "': they are fixed by ", a.groups[i].info.reason);
      return i;
    }
    fail(flag, ": '", name, "' is not a Conv, ConvTranspose, Gemm or MatMul layer with a trained weight");
  };
  if (!o.layers.empty()) {
    std::fill(eligible.begin(), eligible.end(), 0);
    for (const auto& name : o.layers) eligible[check_named("--layers", name)] = 1;
  }
  for (const auto& [name, amt] : o.layer_amounts) {
    size_t i = check_named("--layer-amount", name);
    amount[i] = amt;
    eligible[i] = 1;
  }
  for (size_t i = 0; i < a.groups.size(); ++i) {
    const ChannelGroup& info = a.groups[i].info;
    if (info.owners.empty()) {
      eligible[i] = 0;
      continue;
    }
    if (!info.prunable()) {
      report.skipped.push_back("group '" + info.name + "': " + info.reason);
      eligible[i] = 0;
    } else if (info.removable < info.clusters) {
      report.skipped.push_back("group '" + info.name + "': " + std::to_string(info.clusters - info.removable) + " of " +
                               std::to_string(info.clusters) + " channels left alone: " + info.reason);
    }
    for (const auto& name : o.ignored)
      if (eligible[i] && is_owner_of_group(a.groups[i], name)) {
        report.skipped.push_back("group '" + info.name + "': ignored");
        eligible[i] = 0;
      }
  }

  // Channel importance per cluster.
  at::NoGradGuard no_grad;
  at::Tensor score = at::zeros({a.clusters}, at::kDouble);
  auto tensor = [&](const std::string& name) { return g.initializer(name)->tensor.detach().to(at::kDouble); };
  auto add = [&](const ParamUse& p, const at::Tensor& per_element, at::Tensor& into) {
    std::vector<int64_t> ids = a.ids(p.value);
    into.index_add_(0, at::tensor(ids, at::kLong), per_channel(per_element, p.axis, static_cast<int64_t>(ids.size())));
  };
  if (o.method == "random") {
    at::Generator gen = at::detail::createCPUGenerator(o.seed);
    score = at::rand({a.clusters}, gen, at::kDouble);
  } else if (o.method == "l1" || o.method == "l2") {
    for (const ParamUse& p : a.params)
      if (p.role == Role::OwnerWeight) add(p, o.method == "l1" ? tensor(p.init).abs() : tensor(p.init).pow(2), score);
    if (o.method == "l2") score.sqrt_();
  } else if (o.method == "slim") {
    for (const ParamUse& p : a.params)
      if (p.role == Role::Scale) add(p, tensor(p.init).abs(), score);
    for (size_t i = 0; i < a.groups.size(); ++i) {
      bool has_bn = false;
      for (int64_t c : a.groups[i].clusters) has_bn = has_bn || score[c].item<double>() != 0.0;
      if (eligible[i] && !has_bn) {
        report.skipped.push_back("group '" + a.groups[i].info.name + "': slim needs a BatchNorm, none follows");
        eligible[i] = 0;
      }
    }
  } else {  // taylor
    int64_t batches = 0;
    at::AutoGradMode grad_on(true);  // the source runs training steps
    o.gradients([&](const std::map<std::string, at::Tensor>& grads) {
      at::Tensor first_order = at::zeros({a.clusters}, at::kDouble);
      for (const ParamUse& p : a.params) {
        if (p.role == Role::Consumer || p.role == Role::Statistic) continue;
        auto it = grads.find(p.init);
        if (it == grads.end() || !it->second.defined()) continue;
        add(p, tensor(p.init) * it->second.detach().to(at::kDouble), first_order);
      }
      score += first_order.pow(2);
      ++batches;
    });
    SHRINK_CHECK(batches > 0, "taylor importance: no batch of gradients to estimate with");
    score /= static_cast<double>(batches);
  }

  // Selection: which clusters go.
  std::vector<char> removed(a.clusters, 0);
  auto cap = [&](size_t i) {
    int64_t n = a.groups[i].info.clusters;
    return std::min<int64_t>(n - 1, static_cast<int64_t>(std::floor(o.max_ratio * n + 1e-9)));
  };
  std::vector<int64_t> removed_in(a.groups.size(), 0);
  score = score.contiguous();
  const std::vector<double> scores(score.data_ptr<double>(), score.data_ptr<double>() + a.clusters);
  auto ascending = [&](std::vector<int64_t>& ids, const std::vector<double>& s) {
    std::stable_sort(ids.begin(), ids.end(), [&](int64_t l, int64_t r) { return s[l] < s[r]; });
  };
  if (!o.global) {
    for (size_t i = 0; i < a.groups.size(); ++i) {
      if (!eligible[i]) continue;
      std::vector<int64_t> free;
      for (int64_t c : a.groups[i].clusters)
        if (a.removable[c]) free.push_back(c);
      ascending(free, scores);
      int64_t target = std::min<int64_t>(static_cast<int64_t>(std::nearbyint(amount[i] * a.groups[i].info.clusters)), cap(i));
      for (int64_t k = 0; k < std::min<int64_t>(target, static_cast<int64_t>(free.size())); ++k) removed[free[k]] = 1, ++removed_in[i];
    }
  } else {
    // Scores on a common scale: each group's divided by its mean.
    std::vector<double> normalized = scores;
    std::vector<int64_t> pool;
    int64_t total = 0;
    std::vector<size_t> group_of(a.clusters, 0);
    for (size_t i = 0; i < a.groups.size(); ++i) {
      if (!eligible[i]) continue;
      const auto& ids = a.groups[i].clusters;
      double mean = 0;
      for (int64_t c : ids) mean += scores[c] / static_cast<double>(ids.size());
      if (mean > 0)
        for (int64_t c : ids) normalized[c] = scores[c] / mean;
      total += static_cast<int64_t>(ids.size());
      for (int64_t c : ids) {
        group_of[c] = i;
        if (a.removable[c]) pool.push_back(c);
      }
    }
    ascending(pool, normalized);
    int64_t target = static_cast<int64_t>(std::nearbyint(o.amount * total)), done = 0;
    for (int64_t c : pool) {
      if (done >= target) break;
      size_t i = group_of[c];
      if (removed_in[i] >= cap(i)) continue;
      removed[c] = 1, ++removed_in[i], ++done;
    }
  }
  // Round each group's kept channels up to a multiple of round_to, then keep at least one
  // channel in every value: the best-scoring removed clusters come back first.
  for (size_t i = 0; i < a.groups.size(); ++i) {
    if (!removed_in[i]) continue;
    std::vector<int64_t> gone;
    for (int64_t c : a.groups[i].clusters)
      if (removed[c]) gone.push_back(c);
    ascending(gone, scores);
    int64_t n = a.groups[i].info.clusters, kept = n - removed_in[i];
    int64_t want = std::min(n, (kept + o.round_to - 1) / o.round_to * o.round_to);
    for (int64_t k = 0; k < want - kept; ++k) removed[gone[gone.size() - 1 - k]] = 0, --removed_in[i];
  }
  for (const ir::Value* v : a.values()) {
    std::vector<int64_t> ids = a.ids(v);
    bool any = false;
    for (int64_t c : ids) any = any || !removed[c];
    if (any) continue;
    int64_t best = *std::max_element(ids.begin(), ids.end(), [&](int64_t l, int64_t r) { return scores[l] < scores[r]; });
    removed[best] = 0;
  }

  // Removal.
  std::map<const ir::Value*, std::vector<int64_t>> keep;
  for (const ir::Value* v : a.values()) {
    std::vector<int64_t> ids = a.ids(v), k;
    for (int64_t i = 0; i < static_cast<int64_t>(ids.size()); ++i)
      if (!removed[ids[i]]) k.push_back(i);
    if (k.size() != ids.size()) keep[v] = std::move(k);
  }
  for (size_t i = 0; i < a.groups.size(); ++i) {
    int64_t gone = 0;
    for (int64_t c : a.groups[i].clusters) gone += removed[c];
    if (gone) report.pruned.push_back({a.groups[i].info.name, a.groups[i].info.clusters, a.groups[i].info.clusters - gone});
  }
  for (auto& [v, k] : keep) report.kept[v->name] = k;
  if (keep.empty()) return report;
  for (const ParamUse& p : a.params)
    if (auto it = keep.find(p.value); it != keep.end()) g.slice_initializer(p.init, p.axis, expand(it->second, p.block));
  for (auto [n, out_per] : a.grouped)
    if (auto it = keep.find(n->output(0)); it != keep.end())
      n->attrs.set("group", ir::Attribute(static_cast<int64_t>(it->second.size()) / out_per));
  for (ir::Node* n : a.splits) {
    std::vector<int64_t> sizes;
    bool changed = false;
    for (ir::Value* v : n->outputs()) {
      auto it = keep.find(v);
      changed = changed || it != keep.end();
      sizes.push_back(it != keep.end() ? static_cast<int64_t>(it->second.size()) : a.channels_of(v));
    }
    if (!changed) continue;
    ir::Value* s = g.add_initializer(g.unique_name(n->name + ".split"), at::tensor(sizes, at::kLong), ir::InitKind::Constant);
    ir::Attributes attrs = n->attrs;
    attrs.erase("split");
    attrs.erase("num_outputs");
    g.replace_node(n, "Split", {n->input(0), s}, attrs);
  }
  for (const ChannelSlice& sl : a.slices) {
    ir::Value* x = sl.node->input(0);
    auto it = keep.find(x);
    if (it == keep.end()) continue;
    const std::vector<int64_t>& kx = it->second;
    auto before = [&](int64_t c) { return std::lower_bound(kx.begin(), kx.end(), c) - kx.begin(); };
    const int64_t start = before(sl.start), end = before(sl.end);
    for (size_t i = 1; i <= 2; ++i) {
      at::Tensor bound = g.initializer(sl.node->input(i)->name)->tensor.to(at::kLong).clone();
      bound[static_cast<int64_t>(sl.entry)] = i == 1 ? start : end;
      g.set_input(sl.node, i, g.add_initializer(g.unique_name(sl.node->name + (i == 1 ? ".starts" : ".ends")), bound,
                                                ir::InitKind::Constant));
    }
  }
  for (const Shuffle& s : a.shuffles) {
    ir::Value* x = s.split->input(0);
    ir::Value* y = s.merge->output(0);
    if (!keep.count(x)) continue;
    const std::vector<int64_t>& kx = keep.at(x);
    const std::vector<int64_t>& ky = keep.at(y);
    const int64_t c = a.channels_of(x), per_group = c / s.groups;
    // Still a shuffle when the same positions survive in every group of the input.
    std::vector<int64_t> positions;
    for (int64_t i : kx)
      if (i < per_group) positions.push_back(i);
    std::vector<int64_t> regular;
    for (int64_t grp = 0; grp < s.groups; ++grp)
      for (int64_t p : positions) regular.push_back(grp * per_group + p);
    if (regular == kx) {
      const int64_t per = static_cast<int64_t>(positions.size());
      const int64_t h = x->type.dims[2], w = x->type.dims[3];
      auto retarget = [&](ir::Node* reshape, int64_t axis, int64_t extent, std::vector<int64_t> computed) {
        ir::Value* target = reshape->input(1);
        if (g.initializer(target->name) && target->users.size() == 1) {
          at::Tensor t = g.initializer(target->name)->tensor.clone();
          if (t[axis].item<int64_t>() > 0) t[axis] = extent;
          g.set_initializer_tensor(target->name, t);
        } else {
          g.set_input(reshape, 1, g.add_initializer(g.unique_name(reshape->name + ".shape"),
                                                     at::tensor(computed, at::kLong), ir::InitKind::Constant));
        }
      };
      retarget(s.split, 2, per, {0, s.groups, per, h, w});
      retarget(s.merge, 1, per * s.groups, {0, per * s.groups, h, w});
      s.split->output(0)->type.dims[2] = per;
      s.swap->output(0)->type.dims[1] = per;
    } else {
      std::map<int64_t, int64_t> new_index;
      for (size_t i = 0; i < kx.size(); ++i) new_index[kx[i]] = static_cast<int64_t>(i);
      std::vector<int64_t> perm;
      for (int64_t j : ky) perm.push_back(new_index.at(s.source(j, c)));
      ir::Value* idx = g.add_initializer(g.unique_name(s.merge->name + ".perm"), at::tensor(perm, at::kLong),
                                         ir::InitKind::Constant);
      ir::Attributes attrs;
      attrs.set("axis", int64_t{1});
      g.replace_node(s.merge, "Gather", {x, idx}, attrs);
      g.remove_node(s.swap);
      g.remove_node(s.split);
    }
  }
  for (const Retarget& r : a.retargets)
    if (auto it = keep.find(r.reshape->input(0)); it != keep.end()) {
      ir::Value* target = r.reader->input(r.input);
      at::Tensor t = g.initializer(target->name)->tensor.clone();
      t[r.entry] = static_cast<int64_t>(it->second.size());
      g.set_input(r.reader, r.input, g.add_initializer(g.unique_name(target->name + ".pruned"), t, ir::InitKind::Constant));
    }
  for (auto& [v, k] : keep) const_cast<ir::Value*>(v)->type.dims[a.axis_of(v)] = static_cast<int64_t>(k.size());
  for (auto& [flat, src] : a.flattened)
    if (auto it = keep.find(src.first); it != keep.end())
      const_cast<ir::Value*>(flat)->type.dims[1] = static_cast<int64_t>(it->second.size()) * src.second;
  passes::eliminate_dead_code(g);  // the shape arithmetic of rewritten targets
  g.remove_unused_values();
  if (!a.retargets.empty()) ops::infer_shapes(g);  // values computed from sliced constants (an expanded class token)
  return report;
}

}  // namespace shrink::prune
