#include "shrink/prune/structured.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "shrink/core/error.h"

namespace shrink::prune {
namespace {

const std::set<std::string> kChannelwise = {"Relu",      "Clip",        "LeakyRelu",         "Sigmoid",
                                            "Tanh",      "HardSigmoid", "HardSwish",         "Elu",
                                            "Selu",      "Softplus",    "MaxPool",           "AveragePool",
                                            "Identity",  "Dropout",     "GlobalAveragePool", "GlobalMaxPool"};

struct Analysis {
  std::map<const ir::Value*, const ir::Value*> parent;
  std::map<const ir::Value*, std::string> blocked;  // root -> reason
  std::map<const ir::Value*, ChannelGroup> groups;   // root -> group (filled at the end)

  const ir::Value* find(const ir::Value* v) {
    if (!parent.count(v)) parent[v] = v;
    while (parent[v] != v) v = parent[v] = parent[parent[v]];
    return v;
  }
  void unite(const ir::Value* a, const ir::Value* b) {
    a = find(a), b = find(b);
    if (a == b) return;
    parent[b] = a;
    if (blocked.count(b) && !blocked.count(a)) blocked[a] = blocked[b];
  }
  void block(const ir::Value* v, const std::string& why) {
    const ir::Value* r = find(v);
    if (!blocked.count(r)) blocked[r] = why;
  }
};

bool has_channels(const ir::Value* v) { return v && v->type.has_shape && v->type.rank() >= 2 && v->type.dims[1] > 0; }

const ir::Initializer* trained(const ir::Graph& g, const ir::Value* v) {
  const ir::Initializer* init = v ? g.initializer(v->name) : nullptr;
  return init && init->kind == ir::InitKind::Parameter ? init : nullptr;
}

}  // namespace

std::string ChannelGroup::name() const { return owners.empty() ? "?" : owners.front()->name; }

std::vector<ChannelGroup> channel_groups(const ir::Graph& g) {
  Analysis a;
  std::map<const ir::Value*, std::vector<std::pair<ir::Node*, int64_t>>> consumers;  // value -> (node, block)
  std::map<const ir::Value*, std::vector<ir::Node*>> owners, bns, dws;
  std::map<const ir::Value*, std::vector<ir::Value*>> flats;  // channel value -> Flatten outputs

  auto block_all = [&](const ir::Node& n, const std::string& why) {
    for (ir::Value* v : n.inputs())
      if (has_channels(v) && !g.is_initializer(v)) a.block(v, why);
    for (ir::Value* v : n.outputs())
      if (has_channels(v)) a.block(v, why);
  };
  for (ir::Value* v : g.inputs())
    if (has_channels(v)) a.block(v, "graph input '" + v->name + "'");

  for (const auto& np : g.nodes()) {
    ir::Node& n = *np;
    const std::string& op = n.op_type;
    ir::Value* x = n.input(0);
    ir::Value* y = n.output(0);
    if (op == "Conv" && has_channels(x) && has_channels(y) && trained(g, n.input(1))) {
      int64_t group = n.attrs.get_int("group", 1);
      if (group == 1) {
        owners[y].push_back(&n);
        a.find(y);
        consumers[x].push_back({&n, 1});
      } else if (group == x->type.dims[1] && group == y->type.dims[1]) {
        a.unite(x, y);
        dws[y].push_back(&n);
      } else {
        block_all(n, n.describe() + " is a grouped convolution");
      }
    } else if (op == "Gemm" && has_channels(x) && has_channels(y) && trained(g, n.input(1)) &&
               n.attrs.get_int("transA", 0) == 0 &&
               (!n.input(2) || (g.is_initializer(n.input(2)) && n.input(2)->type.rank() == 1))) {
      owners[y].push_back(&n);
      a.find(y);
      consumers[x].push_back({&n, 1});
    } else if (op == "Flatten" && has_channels(x) && x->type.rank() == 4 && n.attrs.get_int("axis", 1) == 1 &&
               x->type.dims[2] > 0 && x->type.dims[3] > 0) {
      bool only_gemm = !y->users.empty() && !g.is_graph_output(y);
      for (ir::Node* u : y->users) only_gemm = only_gemm && u->op_type == "Gemm" && u->input(0) == y;
      if (only_gemm) {
        flats[x].push_back(y);
        a.find(x);
      } else {
        block_all(n, n.describe() + " feeds something other than Gemm");
      }
    } else if (op == "BatchNormalization" && has_channels(x)) {
      a.unite(x, y);
      bns[y].push_back(&n);
    } else if (kChannelwise.count(op) && has_channels(x) && has_channels(y)) {
      a.unite(x, y);
    } else if ((op == "Add" || op == "Sub" || op == "Mul" || op == "Div") && has_channels(n.input(0)) &&
               has_channels(n.input(1)) && !g.is_initializer(n.input(0)) && !g.is_initializer(n.input(1)) &&
               n.input(0)->type.dims == n.input(1)->type.dims) {
      a.unite(n.input(0), n.input(1));
      a.unite(n.input(0), y);
    } else {
      block_all(n, n.describe() + " has no channel rule");
    }
  }
  for (ir::Value* v : g.outputs())
    if (has_channels(v)) a.block(v, "graph output '" + v->name + "'");

  // Gemm inputs that come from a Flatten: the Gemm consumes the Flatten's source channels.
  std::map<const ir::Value*, const ir::Value*> flat_source;
  for (auto& [src, outs] : flats)
    for (ir::Value* f : outs) flat_source[f] = src;

  std::map<const ir::Value*, ChannelGroup> groups;
  for (auto& [v, p] : a.parent) {
    const ir::Value* root = a.find(v);
    ChannelGroup& grp = groups[root];
    grp.channels = root->type.dims[1];
    grp.values.push_back(const_cast<ir::Value*>(v));
    if (a.blocked.count(root)) grp.prunable = false, grp.reason = a.blocked[root];
  }
  for (auto& [v, list] : owners) groups[a.find(v)].owners.insert(groups[a.find(v)].owners.end(), list.begin(), list.end());
  for (auto& [v, list] : bns) groups[a.find(v)].batch_norms.insert(groups[a.find(v)].batch_norms.end(), list.begin(), list.end());
  for (auto& [v, list] : dws) groups[a.find(v)].depthwise.insert(groups[a.find(v)].depthwise.end(), list.begin(), list.end());
  for (auto& [v, list] : consumers) {
    if (flat_source.count(v)) {
      const ir::Value* src = flat_source[v];
      int64_t block = src->type.dims[2] * src->type.dims[3];
      for (auto& [node, b] : list) groups[a.find(src)].consumers.push_back({node, block});
      groups[a.find(src)].flattened.push_back(const_cast<ir::Value*>(v));
      continue;
    }
    if (!a.parent.count(v)) continue;  // a graph input's channels: nothing to tie
    for (auto& [node, b] : list) groups[a.find(v)].consumers.push_back({node, b});
  }
  // Node lists in graph order (the maps above are keyed by pointers).
  std::map<const ir::Node*, size_t> pos;
  for (size_t i = 0; i < g.nodes().size(); ++i) pos[g.nodes()[i].get()] = i;
  auto by_pos = [&](std::vector<ir::Node*>& v) {
    std::sort(v.begin(), v.end(), [&](const ir::Node* l, const ir::Node* r) { return pos[l] < pos[r]; });
  };
  std::vector<ChannelGroup> out;
  for (auto& [root, grp] : groups) {
    by_pos(grp.owners);
    by_pos(grp.batch_norms);
    by_pos(grp.depthwise);
    std::sort(grp.consumers.begin(), grp.consumers.end(),
              [&](const auto& l, const auto& r) { return pos[l.node] < pos[r.node]; });
    if (grp.prunable && grp.owners.empty()) grp.prunable = false, grp.reason = "no Conv or Gemm creates these channels";
    if (grp.prunable && grp.consumers.empty()) grp.prunable = false, grp.reason = "nothing reads these channels";
    std::sort(grp.values.begin(), grp.values.end(), [](auto* l, auto* r) { return l->name < r->name; });
    out.push_back(std::move(grp));
  }
  // A stable order: by the first owner's position in the graph.
  auto key = [&](const ChannelGroup& c) { return c.owners.empty() ? g.nodes().size() : pos[c.owners.front()]; };
  std::stable_sort(out.begin(), out.end(), [&](const ChannelGroup& l, const ChannelGroup& r) { return key(l) < key(r); });
  return out;
}

StructuredReport prune_structured(ir::Graph& g, const StructuredOptions& o) {
  SHRINK_CHECK(o.amount >= 0.0 && o.amount < 1.0, "--amount must be in [0, 1), got ", o.amount);
  SHRINK_CHECK(o.method == "l1" || o.method == "l2" || o.method == "slim" || o.method == "random", "--method: '",
               o.method, "' is not a structured method (l1, l2, slim, random)");
  SHRINK_CHECK(o.round_to >= 1, "--round-to must be at least 1, got ", o.round_to);
  StructuredReport report;
  at::Generator gen = at::detail::createCPUGenerator(o.seed);
  at::NoGradGuard no_grad;
  for (ChannelGroup& grp : channel_groups(g)) {
    if (!grp.prunable) {
      if (!grp.owners.empty()) report.skipped.push_back("group '" + grp.name() + "': " + grp.reason);
      continue;
    }
    bool ignored = false;
    for (ir::Node* n : grp.owners)
      ignored = ignored || std::count(o.ignored.begin(), o.ignored.end(), n->name) > 0;
    if (ignored) {
      report.skipped.push_back("group '" + grp.name() + "': ignored");
      continue;
    }
    const int64_t c = grp.channels;
    int64_t keep_n = c - static_cast<int64_t>(std::nearbyint(o.amount * c));
    keep_n = std::min(c, (keep_n + o.round_to - 1) / o.round_to * o.round_to);
    keep_n = std::max<int64_t>(1, keep_n);
    if (keep_n == c) continue;

    // Channel importance, summed over everything that defines the channels.
    at::Tensor score = at::zeros({c}, at::kDouble);
    if (o.method == "random") {
      score = at::rand({c}, gen, at::kDouble);
    } else if (o.method == "slim") {
      if (grp.batch_norms.empty()) {
        report.skipped.push_back("group '" + grp.name() + "': slim needs a BatchNorm, none follows");
        continue;
      }
      for (ir::Node* bn : grp.batch_norms) score += g.initializer(bn->input(1)->name)->tensor.detach().abs().to(at::kDouble);
    } else {
      for (ir::Node* n : grp.owners) {
        at::Tensor w = g.initializer(n->input(1)->name)->tensor.detach().to(at::kDouble);
        if (n->op_type == "Gemm" && n->attrs.get_int("transB", 0) == 0) w = w.t();
        w = w.reshape({c, -1});
        score += o.method == "l1" ? w.abs().sum(1) : w.pow(2).sum(1).sqrt();
      }
    }
    at::Tensor keep = std::get<0>(std::get<1>(at::topk(score, keep_n, 0, true, true)).sort());
    std::vector<int64_t> idx(keep.data_ptr<int64_t>(), keep.data_ptr<int64_t>() + keep_n);

    auto slice = [&](ir::Value* v, int64_t axis, const std::vector<int64_t>& ix) {
      if (v && g.is_initializer(v)) g.slice_initializer(v->name, axis, ix);
    };
    for (ir::Node* n : grp.owners) {
      bool gemm_t = n->op_type == "Gemm" && n->attrs.get_int("transB", 0) == 0;
      slice(n->input(1), gemm_t ? 1 : 0, idx);
      slice(n->input(2), 0, idx);
    }
    for (ir::Node* n : grp.batch_norms)
      for (int i = 1; i <= 4; ++i) slice(n->input(i), 0, idx);
    for (ir::Node* n : grp.depthwise) {
      slice(n->input(1), 0, idx);
      slice(n->input(2), 0, idx);
      n->attrs.set("group", ir::Attribute(keep_n));
    }
    for (auto& [n, block] : grp.consumers) {
      std::vector<int64_t> cols;
      for (int64_t i : idx)
        for (int64_t j = 0; j < block; ++j) cols.push_back(i * block + j);
      bool gemm_t = n->op_type == "Gemm" && n->attrs.get_int("transB", 0) == 0;
      slice(n->input(1), n->op_type == "Gemm" ? (gemm_t ? 0 : 1) : 1, cols);
    }
    for (ir::Value* v : grp.values) v->type.dims[1] = keep_n;
    for (ir::Value* v : grp.flattened) v->type.dims[1] = v->type.dims[1] / c * keep_n;
    report.pruned.push_back({grp.name(), c, keep_n, idx});
  }
  return report;
}

}  // namespace shrink::prune
