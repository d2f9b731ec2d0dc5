#include "shrink/prune/unstructured.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "shrink/core/error.h"

namespace shrink::prune {
namespace {

bool is_weight_layer(const ir::Node& n) {
  return n.op_type == "Conv" || n.op_type == "ConvTranspose" || n.op_type == "Gemm" || n.op_type == "MatMul";
}

std::string known_layers(const std::vector<PrunableWeight>& all) {
  std::string s;
  for (size_t i = 0; i < all.size() && i < 12; ++i) s += (i ? ", " : "") + all[i].node->name;
  if (all.size() > 12) s += ", ...";
  return s;
}

// The selected layers: all, or those named, less the ignored; unknown names are errors.
std::vector<PrunableWeight> select(const ir::Graph& g, const UnstructuredOptions& o) {
  std::vector<PrunableWeight> all = prunable_weights(g);
  auto check_known = [&](const std::vector<std::string>& names, const char* flag) {
    for (const auto& n : names) {
      bool found = std::any_of(all.begin(), all.end(), [&](const PrunableWeight& w) { return w.node->name == n; });
      SHRINK_CHECK(found, flag, ": '", n, "' is not a prunable layer of the model (layers: ", known_layers(all), ")");
    }
  };
  check_known(o.layers, "--layers");
  check_known(o.ignored, "--ignore");
  std::vector<PrunableWeight> out;
  for (const auto& w : all) {
    const std::string& n = w.node->name;
    if (!o.layers.empty() && std::find(o.layers.begin(), o.layers.end(), n) == o.layers.end()) continue;
    if (std::find(o.ignored.begin(), o.ignored.end(), n) != o.ignored.end()) continue;
    out.push_back(w);
  }
  return out;
}

at::Tensor scores(const ir::Graph& g, const PrunableWeight& w, const UnstructuredOptions& o, at::Generator& gen) {
  at::Tensor weight = g.initializer(w.weight)->tensor.detach();
  if (o.method == "random") return at::rand(weight.sizes(), gen, at::kFloat);
  if (o.importance) {
    at::Tensor s = o.importance(*w.node, weight);
    SHRINK_CHECK(s.sizes() == weight.sizes(), w.node->describe(), ": importance has shape ", s.sizes(),
                 ", expected the weight's ", weight.sizes());
    return s.to(at::kFloat);
  }
  return weight.abs().to(at::kFloat);
}

// Sets the mask of one layer (soft: the mask initializer, created if needed; hard: zeros).
void apply_mask(ir::Graph& g, PrunableWeight& w, const at::Tensor& keep, bool soft) {
  at::NoGradGuard no_grad;
  ir::Initializer* weight = g.initializer(w.weight);
  at::Tensor mask = keep.to(weight->tensor.scalar_type());
  if (!w.mask.empty()) {
    g.initializer(w.mask)->tensor.copy_(mask);  // in place: sessions already built see it
    if (!soft) weight->tensor.mul_(mask);
    return;
  }
  if (!soft) {
    weight->tensor.mul_(mask);
    return;
  }
  std::string mask_name = w.weight + "_mask";
  SHRINK_CHECK(!g.find_value(mask_name), w.node->describe(), ": a value named '", mask_name, "' already exists");
  ir::Value* m = g.add_initializer(mask_name, mask, ir::InitKind::Buffer);
  ir::Node* mul = g.insert_node_before(w.node, "Mul", {g.value(w.weight), m}, {g.unique_name(w.weight + "_masked")}, {},
                                       g.unique_name(w.node->name + "_mask"));
  mul->output(0)->type = g.value(w.weight)->type;
  g.set_input(w.node, 1, mul->output(0));
  w.mask = mask_name;
}

}  // namespace

std::vector<PrunableWeight> prunable_weights(const ir::Graph& g) {
  std::vector<PrunableWeight> out;
  for (const auto& node : g.nodes()) {
    if (!is_weight_layer(*node)) continue;
    ir::Value* v = node->input(1);
    if (!v) continue;
    const ir::Initializer* init = g.initializer(v->name);
    if (init && init->kind == ir::InitKind::Parameter && init->tensor.is_floating_point()) {
      out.push_back({node.get(), v->name, ""});
      continue;
    }
    const ir::Node* mul = v->producer;
    if (mul && mul->op_type == "Mul" && mul->inputs().size() == 2 && v->users.size() == 1) {
      ir::Value *a = mul->input(0), *b = mul->input(1);
      const ir::Initializer* wi = g.initializer(a->name);
      if (wi && wi->kind == ir::InitKind::Parameter && g.is_initializer(b) && b->name == a->name + "_mask")
        out.push_back({node.get(), a->name, b->name});
    }
  }
  return out;
}

at::Tensor alive_mask(const ir::Graph& g, const PrunableWeight& w) {
  if (!w.mask.empty()) return g.initializer(w.mask)->tensor.detach() != 0;
  return g.initializer(w.weight)->tensor.detach() != 0;
}

double amount_per_round(double amount, int rounds) {
  SHRINK_CHECK(rounds >= 1, "iterative pruning needs at least one round, got ", rounds);
  return 1.0 - std::pow(1.0 - amount, 1.0 / rounds);
}

std::vector<LayerReport> prune_unstructured(ir::Graph& g, const UnstructuredOptions& o) {
  SHRINK_CHECK(o.amount >= 0.0 && o.amount < 1.0, "--amount must be in [0, 1), got ", o.amount);
  SHRINK_CHECK(o.method == "l1" || o.method == "random" || o.method == "global", "--method: '", o.method,
               "' is not an unstructured method (l1, random, global)");
  SHRINK_CHECK(o.min_keep > 0.0 && o.min_keep <= 1.0, "the per-layer floor must be in (0, 1], got ", o.min_keep);
  std::vector<PrunableWeight> layers = select(g, o);
  SHRINK_CHECK(!layers.empty(), "the model has no prunable layer (Conv, ConvTranspose, Gemm or MatMul with a trained weight)");
  at::Generator gen = at::detail::createCPUGenerator(o.seed);

  std::vector<at::Tensor> alive, score;
  std::vector<LayerReport> report;
  for (auto& w : layers) {
    alive.push_back(alive_mask(g, w));
    score.push_back(scores(g, w, o, gen));
    LayerReport r;
    r.node = w.node->name;
    r.weight = w.weight;
    r.total = alive.back().numel();
    r.alive_before = alive.back().sum().item<int64_t>();
    report.push_back(r);
  }

  std::vector<at::Tensor> keep(layers.size());
  if (o.method != "global") {
    for (size_t i = 0; i < layers.size(); ++i) {
      int64_t n = report[i].alive_before;
      int64_t k = static_cast<int64_t>(std::nearbyint(o.amount * n));  // Python round(): half to even, as PyTorch
      SHRINK_CHECK(k < n || n == 0, layers[i].node->describe(), ": pruning ", k, " of its ", n,
                   " remaining weights would empty the layer; lower --amount or --ignore it");
      at::Tensor flat_keep = alive[i].flatten().clone();
      if (k > 0) {
        // Only alive weights compete: dead ones rank above everything and are never chosen.
        at::Tensor s_alive = score[i].flatten().masked_fill(alive[i].flatten().logical_not(), INFINITY);
        at::Tensor idx = std::get<1>(at::topk(s_alive, k, 0, /*largest=*/false, /*sorted=*/true));
        flat_keep.index_fill_(0, idx, false);
      }
      keep[i] = flat_keep.view(alive[i].sizes());
    }
  } else {
    // One ranking over every alive weight; a layer stops losing weights at its floor.
    std::vector<at::Tensor> flat_scores, owner, position;
    int64_t total_alive = 0;
    std::vector<int64_t> remaining(layers.size()), floor(layers.size());
    for (size_t i = 0; i < layers.size(); ++i) {
      at::Tensor pos = alive[i].flatten().nonzero().squeeze(1);
      flat_scores.push_back(score[i].flatten().index_select(0, pos));
      owner.push_back(at::full({pos.numel()}, static_cast<int64_t>(i), at::kLong));
      position.push_back(pos);
      remaining[i] = report[i].alive_before;
      floor[i] = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(o.min_keep * report[i].total)));
      total_alive += pos.numel();
      keep[i] = alive[i].flatten().clone();
    }
    int64_t k = static_cast<int64_t>(std::nearbyint(o.amount * total_alive));
    at::Tensor all_scores = at::cat(flat_scores), all_owner = at::cat(owner), all_pos = at::cat(position);
    at::Tensor order = std::get<1>(at::sort(all_scores, /*stable=*/true, 0, /*descending=*/false));
    auto ord = order.accessor<int64_t, 1>();
    auto own = all_owner.accessor<int64_t, 1>();
    auto pos = all_pos.accessor<int64_t, 1>();
    int64_t pruned = 0;
    for (int64_t j = 0; j < order.numel() && pruned < k; ++j) {
      int64_t i = own[ord[j]];
      if (remaining[i] <= floor[i]) continue;
      keep[i].data_ptr<bool>()[pos[ord[j]]] = false;
      --remaining[i];
      ++pruned;
    }
    for (size_t i = 0; i < layers.size(); ++i) keep[i] = keep[i].view(alive[i].sizes());
  }

  for (size_t i = 0; i < layers.size(); ++i) {
    apply_mask(g, layers[i], keep[i], o.soft);
    report[i].alive_after = keep[i].sum().item<int64_t>();
  }
  return report;
}

int make_permanent(ir::Graph& g) {
  int count = 0;
  for (auto& w : prunable_weights(g)) {
    if (w.mask.empty()) continue;
    at::NoGradGuard no_grad;
    ir::Value* masked = w.node->input(1);
    ir::Node* mul = masked->producer;
    g.initializer(w.weight)->tensor.mul_(g.initializer(w.mask)->tensor);
    g.set_input(w.node, 1, g.value(w.weight));
    g.remove_node(mul);
    g.remove_initializer(w.mask);
    ++count;
  }
  return count;
}

}  // namespace shrink::prune
