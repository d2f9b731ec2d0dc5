#include "shrink/factorize/factorize.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <sstream>

#include "shrink/core/error.h"
#include "shrink/factorize/decompose.h"
#include "shrink/ops/shape_inference.h"
#include "shrink/report/model_stats.h"

namespace shrink::factorize {
namespace {

// A layer as the decompositions see it.
struct Layer {
  ir::Node* node = nullptr;
  at::Tensor weight;  // Gemm/MatMul: [out, in] (Gemm's alpha folded in); Conv: [N, C, kh, kw]
  bool conv = false;
  int64_t out = 0, in = 0;  // matrix view: out x in (Conv: N x C*kh*kw)
  int64_t weights() const { return out * in; }
};

// Why the method cannot factorize this node ("" when it can), filling `layer`.
std::string inspect(const ir::Graph& g, ir::Node& n, const std::string& method, Layer& layer) {
  const std::string& op = n.op_type;
  if (op != "Gemm" && op != "MatMul" && op != "Conv") return "not a Gemm, MatMul or Conv";
  const ir::Initializer* w = n.input(1) ? g.initializer(n.input(1)->name) : nullptr;
  if (!w || w->kind != ir::InitKind::Parameter) return "its weight is not a trained initializer";
  if (n.input(1)->users.size() != 1) return "its weight is shared with another node";
  layer.node = &n;
  at::Tensor t = w->tensor.detach();
  if (op == "Conv") {
    if (t.dim() != 4) return "only 2-D convolutions are factorized";
    if (n.attrs.get_int("group", 1) != 1) return "grouped convolution";
    std::string pad = n.attrs.get_string("auto_pad", "NOTSET");
    if (pad != "NOTSET") return "auto_pad " + pad + " (explicit pads only)";
    layer.conv = true;
    layer.weight = t;
    layer.out = t.size(0), layer.in = t.size(1) * t.size(2) * t.size(3);
    bool one_by_one = t.size(2) == 1 && t.size(3) == 1;
    if (method != "svd" && one_by_one) return method + " applies to kxk convolutions; use svd for 1x1";
    return "";
  }
  if (method != "svd") return method + " applies to convolutions; use svd for " + op;
  if (t.dim() != 2) return "its weight is not a matrix";
  if (op == "Gemm") {
    if (n.attrs.get_int("transA", 0) != 0) return "Gemm with transA";
    at::Tensor m = n.attrs.get_int("transB", 0) ? t : t.t();
    layer.weight = m * n.attrs.get_float("alpha", 1.0f);
  } else {
    layer.weight = t.t();
  }
  layer.out = layer.weight.size(0), layer.in = layer.weight.size(1);
  return "";
}

int64_t clamp_rank(double r, int64_t hi) { return std::clamp<int64_t>(static_cast<int64_t>(r), 1, hi); }

// EVBMF's rank of a matrix, weakened toward its full rank, at least 1.
int64_t vbmf_rank(const at::Tensor& m, const RankRule& rule) {
  int64_t full = std::min(m.size(0), m.size(1)), r = evbmf_rank(m);
  return clamp_rank(std::lround(static_cast<double>(full) - rule.vbmf_weaken * static_cast<double>(full - r)), full);
}

// Ranks for the rule: svd {r}, tucker {R3, R4}, cp {R}.
std::vector<int64_t> choose_ranks(const Layer& l, const std::string& method, const RankRule& rule) {
  using K = RankRule::Kind;
  if (method == "svd") {
    int64_t full = std::min(l.out, l.in);
    at::Tensor m = l.weight.reshape({l.out, l.in});
    switch (rule.kind) {
      case K::Rank: return {clamp_rank(rule.value, full)};
      case K::Ratio: return {clamp_rank(std::floor(l.out * l.in / (rule.value * (l.out + l.in))), full)};
      case K::Energy: return {energy_rank(singular_values(m), rule.value)};
      case K::Vbmf: return {vbmf_rank(m, rule)};
    }
  }
  const int64_t n = l.weight.size(0), c = l.weight.size(1), kh = l.weight.size(2), kw = l.weight.size(3);
  if (method == "tucker") {
    // Few input channels: Tucker-1 (the input side stays whole).
    const bool tucker1 = c <= 4;
    std::vector<int64_t> r(2);
    switch (rule.kind) {
      case K::Rank: r = {clamp_rank(rule.value, c), clamp_rank(rule.value, n)}; break;
      case K::Ratio: {
        // Ranks proportional to the channels: P(a) = C*aC + aC*aN*k + aN*N = P0 / ratio.
        double target = static_cast<double>(l.weights()) / rule.value, k = static_cast<double>(kh * kw);
        double qa = tucker1 ? 0.0 : c * n * k, qb = tucker1 ? n * (c * k + n) : static_cast<double>(c * c + n * n);
        double a = qa > 0 ? (-qb + std::sqrt(qb * qb + 4 * qa * target)) / (2 * qa) : target / qb;
        r = {clamp_rank(std::floor(a * c), c), clamp_rank(std::floor(a * n), n)};
        break;
      }
      case K::Energy:
        r = {energy_rank(singular_values(unfold(l.weight, 1)), rule.value),
             energy_rank(singular_values(unfold(l.weight, 0)), rule.value)};
        break;
      case K::Vbmf:
        r = {vbmf_rank(unfold(l.weight, 1), rule), vbmf_rank(unfold(l.weight, 0), rule)};
        break;
    }
    if (tucker1) r[0] = c;
    return r;
  }
  // cp
  switch (rule.kind) {
    case K::Rank: return {std::max<int64_t>(1, static_cast<int64_t>(rule.value))};
    case K::Ratio:
      return {std::max<int64_t>(1, static_cast<int64_t>(std::floor(l.weights() / (rule.value * (n + c + kh + kw)))))};
    case K::Energy:
      return {std::max(energy_rank(singular_values(unfold(l.weight, 0)), rule.value),
                       energy_rank(singular_values(unfold(l.weight, 1)), rule.value))};
    case K::Vbmf:
      return {std::max(vbmf_rank(unfold(l.weight, 0), rule), vbmf_rank(unfold(l.weight, 1), rule))};
  }
  return {1};
}

int64_t weights_after(const Layer& l, const std::string& method, const std::vector<int64_t>& r) {
  if (method == "svd") return r[0] * (l.out + l.in);
  const int64_t n = l.weight.size(0), c = l.weight.size(1), kh = l.weight.size(2), kw = l.weight.size(3);
  if (method == "tucker") {
    int64_t r3 = r[0], r4 = r[1];
    return (r3 == c ? 0 : c * r3) + r3 * r4 * kh * kw + (r4 == n ? 0 : r4 * n);
  }
  return r[0] * (c + kh + kw + n);
}

class Surgeon {
 public:
  Surgeon(ir::Graph& g, ir::Node* node) : g_(g), node_(node) {}

  ir::Value* weight(const std::string& suffix, const at::Tensor& t) {
    at::Tensor f = t.to(at::kFloat).contiguous();
    f.requires_grad_(true);
    return g_.add_initializer(g_.unique_name(node_->name + "." + suffix), f, ir::InitKind::Parameter);
  }
  // A new node before the layer; returns its output.
  ir::Value* before(const std::string& op, const std::vector<ir::Value*>& inputs, ir::Attributes attrs) {
    std::string name = g_.unique_name(node_->name + ".f" + std::to_string(count_++));
    ir::Node* n = g_.insert_node_before(node_, op, inputs, {name + ".out"}, std::move(attrs), name);
    ops::infer_node_types(g_, *n);
    added_.push_back(n);
    return n->output(0);
  }
  // The layer itself becomes the last factor (its outputs, and so its users, unchanged).
  void last(const std::string& op, const std::vector<ir::Value*>& inputs, ir::Attributes attrs) {
    g_.replace_node(node_, op, inputs, std::move(attrs));
    ops::infer_node_types(g_, *node_);
    added_.push_back(node_);
  }
  std::vector<std::string> names() const {
    std::vector<std::string> v;
    for (const ir::Node* n : added_) v.push_back(n->name);
    return v;
  }
  int64_t macs() const {
    int64_t m = 0;
    for (const ir::Node* n : added_) m += report::node_macs(*n);
    return m;
  }

 private:
  ir::Graph& g_;
  ir::Node* node_;
  int count_ = 0;
  std::vector<ir::Node*> added_;
};

ir::Attributes conv_attrs(std::vector<int64_t> kernel, std::vector<int64_t> strides, std::vector<int64_t> pads,
                          std::vector<int64_t> dilations, int64_t group = 1) {
  ir::Attributes a;
  a.set("kernel_shape", kernel);
  a.set("strides", strides);
  a.set("pads", pads);
  a.set("dilations", dilations);
  if (group != 1) a.set("group", group);
  return a;
}

// Replaces the layer by its factors; returns the relative error of the weight.
double rewrite(ir::Graph& g, const Layer& l, const std::string& method, const std::vector<int64_t>& r,
               const FactorizeOptions& o, std::string& used, std::string& failure, int64_t& macs_after,
               std::vector<std::string>& nodes_after) {
  ir::Node* n = l.node;
  Surgeon s(g, n);
  ir::Value* x = n->input(0);
  ir::Value* bias = n->input(2);
  const at::Tensor w = l.weight.to(at::kDouble);
  if (!l.conv) {  // Gemm / MatMul: x W^T ~ (x b^T) a^T with W ~ a b, W [out, in]
    LowRank f = truncated_svd(w, r[0]);
    used = "svd";
    double err = (w - f.a.mm(f.b)).norm().item<double>() / std::max(1e-300, w.norm().item<double>());
    if (n->op_type == "MatMul") {
      ir::Value* h = s.before("MatMul", {x, s.weight("weight0", f.b.t())}, {});
      s.last("MatMul", {h, s.weight("weight1", f.a.t())}, {});
    } else {
      ir::Attributes first;
      first.set("transB", int64_t{1});
      ir::Value* h = s.before("Gemm", {x, s.weight("weight0", f.b)}, first);
      ir::Attributes second;
      second.set("transB", int64_t{1});
      second.set("beta", n->attrs.get_float("beta", 1.0f));
      std::vector<ir::Value*> in = {h, s.weight("weight1", f.a)};
      if (bias) in.push_back(bias);
      s.last("Gemm", in, second);
    }
    macs_after = s.macs();
    nodes_after = s.names();
    return err;
  }
  const int64_t N = w.size(0), C = w.size(1), kh = w.size(2), kw = w.size(3);
  const std::vector<int64_t> strides = n->attrs.get_ints("strides", {1, 1});
  const std::vector<int64_t> pads = n->attrs.get_ints("pads", {0, 0, 0, 0});
  const std::vector<int64_t> dil = n->attrs.get_ints("dilations", {1, 1});
  auto with_bias = [&](std::vector<ir::Value*> in) {
    if (bias) in.push_back(bias);
    return in;
  };
  const ir::Attributes one = conv_attrs({1, 1}, {1, 1}, {0, 0, 0, 0}, {1, 1});
  const ir::Attributes spatial = conv_attrs({kh, kw}, strides, pads, dil);
  double err = 0;
  if (method == "svd") {  // kxk C -> r with the layer's geometry, then 1x1 r -> N
    LowRank f = truncated_svd(w.reshape({N, -1}), r[0]);
    used = "svd";
    at::Tensor approx = f.a.mm(f.b).reshape(w.sizes());
    err = (w - approx).norm().item<double>() / std::max(1e-300, w.norm().item<double>());
    ir::Value* h = s.before("Conv", {x, s.weight("weight0", f.b.reshape({r[0], C, kh, kw}))}, spatial);
    s.last("Conv", with_bias({h, s.weight("weight1", f.a.reshape({N, r[0], 1, 1}))}), one);
  } else if (method == "tucker") {
    // HOOI gains little below 1e-5 of relative error: no need to run its iterations out.
    Tucker2 t = tucker2(w, r[1], r[0], 20, std::max(o.tolerance, 1e-5));
    err = t.error;
    const int64_t r_in = t.u_in.size(1), r_out = t.u_out.size(1);  // the ranks the kernel can have
    const bool has_in = r_in < C, has_out = r_out < N;
    used = has_in && has_out ? "tucker2" : "tucker1";
    ir::Value* h = x;
    if (has_in) h = s.before("Conv", {h, s.weight("weight0", t.u_in.t().reshape({r_in, C, 1, 1}))}, one);
    if (has_out) {
      h = s.before("Conv", {h, s.weight("core", t.core)}, spatial);
      s.last("Conv", with_bias({h, s.weight("weight2", t.u_out.reshape({N, r_out, 1, 1}))}), one);
    } else {
      s.last("Conv", with_bias({h, s.weight("core", t.u_out.mm(t.core.reshape({r_out, -1})).reshape({N, r_in, kh, kw}))}), spatial);
    }
  } else {  // cp
    Cp cp = cp_als(w, r[0], o.max_iterations, o.tolerance, o.seed);
    err = cp.error;
    used = "cp";
    if (!std::isfinite(cp.error) || !cp.converged) {
      std::ostringstream m;
      m << "CP-ALS did not converge in " << cp.iterations << " iterations (relative error " << cp.error
        << "; raise --max-iterations or --tolerance)";
      failure = m.str();
      return err;
    }
    const int64_t R = r[0];
    // The stride, padding and dilation of each axis go to that axis's depthwise conv.
    const ir::Attributes vertical = conv_attrs({kh, 1}, {strides[0], 1}, {pads[0], 0, pads[2], 0}, {dil[0], 1}, R);
    const ir::Attributes horizontal = conv_attrs({1, kw}, {1, strides[1]}, {0, pads[1], 0, pads[3]}, {1, dil[1]}, R);
    ir::Value* h = s.before("Conv", {x, s.weight("weight0", cp.in.t().reshape({R, C, 1, 1}))}, one);
    h = s.before("Conv", {h, s.weight("weight1", cp.h.t().reshape({R, 1, kh, 1}))}, vertical);
    h = s.before("Conv", {h, s.weight("weight2", cp.w.t().reshape({R, 1, 1, kw}))}, horizontal);
    s.last("Conv", with_bias({h, s.weight("weight3", cp.out.reshape({N, R, 1, 1}))}), one);
  }
  macs_after = s.macs();
  nodes_after = s.names();
  return err;
}

// Factorizes one inspected layer with the given ranks (checked against the break-even).
LayerResult factorize_layer(ir::Graph& g, const Layer& l, const std::string& method, std::vector<int64_t> r,
                            const FactorizeOptions& o) {
  LayerResult res;
  res.node = l.node->name;
  res.op = l.node->op_type;
  res.params_before = l.weights();
  res.macs_before = report::node_macs(*l.node);
  res.ranks = r;
  for (int64_t v : r)
    if (v < 1) {
      res.skipped = "rank " + std::to_string(v) + " is below 1";
      return res;
    }
  res.params_after = weights_after(l, method, r);
  if (method == "tucker" && r[0] >= l.weight.size(1) && r[1] >= l.weight.size(0)) {
    res.skipped = "Tucker ranks (" + std::to_string(r[0]) + ", " + std::to_string(r[1]) + ") are the full channels";
    return res;
  }
  if (res.params_after >= res.params_before && !o.allow_growth) {
    std::ostringstream m;
    m << (r.size() == 1 ? "rank " + std::to_string(r[0]) : "ranks (" + std::to_string(r[0]) + ", " + std::to_string(r[1]) + ")")
      << " gives " << res.params_after << " weights, not fewer than " << res.params_before;
    if (method == "svd")
      m << " (break-even rank " << static_cast<double>(l.out * l.in) / static_cast<double>(l.out + l.in) << ")";
    res.skipped = m.str();
    return res;
  }
  // Rewrite a copy first, so a failed decomposition leaves the graph untouched.
  ir::Graph trial = g.clone();
  Layer copy = l;
  copy.node = trial.find_node(l.node->name);
  std::string used, failure;
  int64_t macs = 0;
  double err = rewrite(trial, copy, method, r, o, used, failure, macs, res.nodes_after);
  if (!failure.empty()) {
    res.skipped = failure;
    res.error = err;
    return res;
  }
  trial.remove_unused_values();
  g = std::move(trial);
  res.method = used;
  res.error = err;
  res.macs_after = macs;
  return res;
}

std::vector<std::pair<ir::Node*, Layer>> candidates(ir::Graph& g, const FactorizeOptions& o,
                                                    std::vector<LayerResult>& skipped) {
  SHRINK_CHECK(o.method == "svd" || o.method == "tucker" || o.method == "cp", "--method: '", o.method,
               "' is not svd, tucker or cp");
  for (const auto& name : o.layers) SHRINK_CHECK(g.find_node(name), "--layers: no node named '", name, "' in the model");
  std::vector<std::pair<ir::Node*, Layer>> out;
  for (const auto& np : g.nodes()) {
    ir::Node& n = *np;
    bool named = std::find(o.layers.begin(), o.layers.end(), n.name) != o.layers.end();
    if (!o.layers.empty() && !named) continue;
    Layer l;
    std::string why = inspect(g, n, o.method, l);
    if (why.empty()) {
      out.emplace_back(&n, l);
    } else if (named || n.op_type == "Gemm" || n.op_type == "MatMul" || n.op_type == "Conv") {
      LayerResult r;
      r.node = n.name;
      r.op = n.op_type;
      r.skipped = why;
      skipped.push_back(r);
    }
  }
  return out;
}

}  // namespace

RankRule parse_rank(const std::string& text) {
  RankRule r;
  if (text == "vbmf") {
    r.kind = RankRule::Kind::Vbmf;
    return r;
  }
  try {
    size_t used = 0;
    long long v = std::stoll(text, &used);
    if (used == text.size() && v >= 1) {
      r.kind = RankRule::Kind::Rank;
      r.value = static_cast<double>(v);
      return r;
    }
  } catch (const std::exception&) {
  }
  fail("--rank: '", text, "' is neither a rank (an integer >= 1) nor vbmf");
}

std::vector<LayerResult> factorize(ir::Graph& g, const FactorizeOptions& o) {
  if (o.rule.kind == RankRule::Kind::Ratio) SHRINK_CHECK(o.rule.value > 1.0, "--ratio must be above 1, got ", o.rule.value);
  if (o.rule.kind == RankRule::Kind::Energy)
    SHRINK_CHECK(o.rule.value > 0.0 && o.rule.value <= 1.0, "--energy must be in (0, 1], got ", o.rule.value);
  std::vector<LayerResult> results;
  auto layers = candidates(g, o, results);
  std::vector<std::string> names;
  for (auto& [n, l] : layers) names.push_back(n->name);
  for (const std::string& name : names) {
    Layer l;
    inspect(g, *g.find_node(name), o.method, l);  // the graph is replaced after each layer
    results.push_back(factorize_layer(g, l, o.method, choose_ranks(l, o.method, o.rule), o));
  }
  return results;
}

std::vector<LayerResult> factorize_search(ir::Graph& g, const FactorizeOptions& o, const SearchOptions& s) {
  SHRINK_CHECK(s.accuracy, "rank search needs an accuracy function");
  SHRINK_CHECK(s.tolerance >= 0, "--tolerance must be non-negative, got ", s.tolerance);
  std::vector<LayerResult> results;
  auto layers = candidates(g, o, results);
  std::vector<std::string> names;
  for (auto& [n, l] : layers) names.push_back(n->name);
  const double base = s.accuracy(g);
  for (const std::string& name : names) {
    Layer l;
    inspect(g, *g.find_node(name), o.method, l);
    // Ranks as a function of one integer k: svd/cp rank k; tucker k scaled to each side.
    const int64_t full = o.method == "svd" ? std::min(l.out, l.in) : std::max(l.weight.size(0), l.weight.size(1));
    auto ranks_of = [&](int64_t k) -> std::vector<int64_t> {
      if (o.method != "tucker") return {k};
      int64_t n = l.weight.size(0), c = l.weight.size(1);
      int64_t r3 = c <= 4 ? c : std::max<int64_t>(1, (k * c + full - 1) / full);
      return {r3, std::max<int64_t>(1, (k * n + full - 1) / full)};
    };
    int64_t hi = full;
    while (hi >= 1 && weights_after(l, o.method, ranks_of(hi)) >= l.weights()) --hi;
    LayerResult best;
    best.node = name;
    best.op = l.node->op_type;
    best.skipped = "no rank below the break-even keeps the accuracy within " + std::to_string(s.tolerance) + " points";
    std::optional<ir::Graph> best_graph;
    int64_t lo = 1;
    while (lo <= hi) {
      int64_t mid = (lo + hi) / 2;
      ir::Graph trial = g.clone();
      Layer tl = l;
      tl.node = trial.find_node(name);
      LayerResult r = factorize_layer(trial, tl, o.method, ranks_of(mid), o);
      double acc = r.skipped.empty() ? s.accuracy(trial) : -1;
      if (s.progress) {
        std::ostringstream line;
        line << name << " rank " << mid << ": " << (r.skipped.empty() ? std::to_string(100 * acc) + "%" : r.skipped);
        s.progress(line.str());
      }
      if (r.skipped.empty() && 100 * (base - acc) <= s.tolerance) {
        best = r;
        best_graph = std::move(trial);
        hi = mid - 1;
      } else {
        lo = mid + 1;
      }
    }
    if (best_graph) g = std::move(*best_graph);
    results.push_back(best);
  }
  return results;
}

}  // namespace shrink::factorize
