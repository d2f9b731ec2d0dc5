#include "shrink/ops/shape_inference.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <c10/util/Exception.h>

#include <algorithm>

#include "shrink/core/error.h"
#include "shrink/core/limits.h"
#include "shrink/ir/verifier.h"
#include "shrink/ops/registry.h"

namespace shrink::ops {
namespace {

// Tensors up to this many elements have their contents followed (shapes, indices).
constexpr int64_t kMaxData = 4096;

// Combines what the file declared with what inference found.
ir::TensorType merge(const ir::Node& node, const ir::Value& out, const ir::TensorType& declared,
                     ir::TensorType inferred) {
  if (!declared.has_shape) return inferred;
  if (!inferred.has_shape) {
    ir::TensorType t = declared;
    t.dtype = inferred.dtype;
    return t;
  }
  SHRINK_CHECK(ir::compatible(declared, inferred), node.describe(), ": output '", out.name,
               "' is declared ", declared.to_string(), " but the op gives ", inferred.to_string());
  for (size_t i = 0; i < inferred.dims.size(); ++i)
    if (inferred.dims[i] == ir::kDynamic) inferred.dims[i] = declared.dims[i];
  return inferred;
}

// The symbols: every unknown extent of a graph input, by name.
struct Symbols {
  std::vector<std::string> names;
  // Symbols of extents the file left unnamed: followed, but an extent made of them
  // stays unnamed too.
  std::vector<bool> anonymous;
  // (input, axis) -> symbol index
  std::map<std::pair<const ir::Value*, size_t>, size_t> at;
  size_t index(const std::string& name) const {
    return static_cast<size_t>(std::find(names.begin(), names.end(), name) - names.begin());
  }
};

Symbols collect_symbols(const ir::Graph& graph) {
  Symbols s;
  for (const ir::Value* in : graph.inputs()) {
    if (!in->type.has_shape) continue;
    for (size_t i = 0; i < in->type.dims.size(); ++i) {
      if (in->type.dims[i] != ir::kDynamic) continue;
      std::string name = i < in->type.dim_names.size() ? in->type.dim_names[i] : "";
      const bool anonymous = name.empty();
      if (anonymous) name = "\x01" + in->name + "#" + std::to_string(i);  // no file can name it so
      size_t k = s.index(name);
      if (k == s.names.size()) {
        s.names.push_back(name);
        s.anonymous.push_back(anonymous);
      }
      s.at[{in, i}] = k;
    }
  }
  return s;
}

// One inference over the graph with every symbol at a value (or, with no probe,
// left unknown), following small tensors' contents.
class Run {
 public:
  Run(const ir::Graph& graph, const DeclaredTypes* declared, const Symbols& symbols,
      const std::vector<int64_t>* probe)
      : g_(graph), declared_(declared), symbols_(symbols), probe_(probe) {
    for (const ir::Value* in : graph.inputs()) {
      ir::TensorType t = in->type;
      t.dim_names.clear();
      if (probe_)
        for (size_t i = 0; i < t.dims.size(); ++i)
          if (auto it = symbols_.at.find({in, i}); it != symbols_.at.end()) t.dims[i] = (*probe_)[it->second];
      types_[in] = std::move(t);
    }
    at::NoGradGuard no_grad;
    for (const auto& node : graph.nodes()) visit(*node);
  }

  ValueTypes& types() { return types_; }
  const std::unordered_map<const ir::Value*, at::Tensor>& data() const { return data_; }

 private:
  const ir::TensorType& type_of(const ir::Value* v) const {
    auto it = types_.find(v);
    return it != types_.end() ? it->second : v->type;  // initializers keep their recorded type
  }
  const at::Tensor* data_of(const ir::Value* v) const {
    if (auto it = data_.find(v); it != data_.end()) return &it->second;
    const ir::Initializer* init = g_.initializer(v->name);
    return init && init->kind == ir::InitKind::Constant ? &init->tensor : nullptr;
  }

  // The declared type with symbols named by the file set to this run's values.
  ir::TensorType declared_for(const ir::TensorType& d) const {
    ir::TensorType t = d;
    for (size_t i = 0; i < t.dims.size(); ++i) {
      if (t.dims[i] != ir::kDynamic || !probe_ || i >= t.dim_names.size()) continue;
      size_t k = symbols_.index(t.dim_names[i]);
      if (k < symbols_.names.size()) t.dims[i] = (*probe_)[k];
    }
    t.dim_names.clear();
    return t;
  }

  void visit(const ir::Node& node) {
    InferContext ctx{node, {}, {}};
    bool all_data = true;
    for (const ir::Value* in : node.inputs()) {
      ctx.inputs.push_back(in ? type_of(in) : ir::TensorType::unknown(at::kFloat));
      const at::Tensor* d = in ? data_of(in) : nullptr;
      ctx.constants.push_back(d);
      all_data = all_data && (!in || d);
    }
    std::vector<ir::TensorType> out = infer_node(node, ctx);
    for (size_t i = 0; i < node.outputs().size(); ++i) {
      const ir::Value* v = node.outputs()[i];
      if (!v) continue;
      SHRINK_CHECK(i < out.size(), node.describe(), ": has ", node.outputs().size(), " outputs, the op defines ",
                   out.size());
      out[i].dim_names.clear();
      if (declared_)
        if (auto it = declared_->find(v->name); it != declared_->end())
          out[i] = merge(node, *v, declared_for(it->second), std::move(out[i]));
      types_[v] = out[i];
    }
    propagate(node, ctx, all_data);
  }

  // Contents of small outputs: Shape and Size from the extents, the rest by the kernel.
  void propagate(const ir::Node& node, const InferContext& ctx, bool all_data) {
    if (node.outputs().empty() || !node.output(0)) return;
    const std::string& op = node.op_type;
    if ((op == "Shape" || op == "Size") && ctx.input(0).is_static()) {
      const ir::TensorType& x = ctx.input(0);
      if (op == "Size") {
        data_[node.output(0)] = at::scalar_tensor(x.numel(), at::kLong);
        return;
      }
      int64_t r = x.rank();
      auto clamp = [r](int64_t a) { return std::clamp(a < 0 ? a + r : a, int64_t{0}, r); };
      int64_t start = clamp(node.attrs.get_int("start", 0)), end = clamp(node.attrs.get_int("end", r));
      std::vector<int64_t> dims(x.dims.begin() + start, x.dims.begin() + std::max(start, end));
      data_[node.output(0)] = at::tensor(dims, at::kLong);
      return;
    }
    if (!all_data) return;
    const OpDef& def = OpRegistry::instance().get(node);
    if (!def.deterministic || !def.foldable) return;  // what constant folding would leave (QDQ)
    for (const ir::Value* v : node.outputs())
      if (v && (!types_.at(v).is_static() || types_.at(v).numel() > kMaxData)) return;
    Tensors args;
    for (size_t i = 0; i < node.inputs().size(); ++i)
      args.push_back(ctx.constant(i) ? *ctx.constant(i) : at::Tensor());
    Tensors values;
    try {
      values = def.make_kernel(node)(KernelContext{}, args);
    } catch (const Error&) {
      return;  // the shape function has accepted the node; its contents stay unknown
    } catch (const c10::Error&) {
      return;
    }
    for (size_t i = 0; i < node.outputs().size() && i < values.size(); ++i)
      if (node.output(i) && values[i].defined()) data_[node.output(i)] = values[i].contiguous();
  }

  const ir::Graph& g_;
  const DeclaredTypes* declared_;
  const Symbols& symbols_;
  const std::vector<int64_t>* probe_;
  ValueTypes types_;
  std::unordered_map<const ir::Value*, at::Tensor> data_;
};

std::string symbolic_name(int64_t coefficient, const std::vector<size_t>& used, const Symbols& s) {
  std::string name = coefficient == 1 ? "" : std::to_string(coefficient);
  for (size_t k : used) name += (name.empty() ? "" : "*") + s.names[k];
  return name;
}

// Solves one extent from the probes: base (every symbol at a[k]), one run per symbol
// with it at b[k], and optionally a run with every symbol small.
struct Solver {
  const Symbols& s;
  const std::vector<int64_t>& a;
  const std::vector<int64_t>& b;
  const std::vector<int64_t>* small;

  // Returns the static extent, or kDynamic with `name` set (empty: unknown).
  int64_t solve(int64_t base, const std::vector<int64_t>& variant, const int64_t* at_small,
                std::string& name) const {
    name.clear();
    if (base == ir::kDynamic) return ir::kDynamic;
    std::vector<size_t> used;
    for (size_t k = 0; k < variant.size(); ++k) {
      if (variant[k] == ir::kDynamic) return ir::kDynamic;
      if (variant[k] != base) used.push_back(k);
    }
    auto product = [&](const std::vector<int64_t>& values, size_t skip, int64_t with) {
      int64_t p = 1;
      for (size_t k : used) p *= k == skip ? with : values[k];
      return p;
    };
    int64_t divisor = product(a, SIZE_MAX, 0);
    if (base % divisor != 0) return ir::kDynamic;
    int64_t c = base / divisor;
    for (size_t k : used)
      if (variant[k] != c * product(a, k, b[k])) return ir::kDynamic;
    if (at_small && *at_small != c * product(*small, SIZE_MAX, 0)) return ir::kDynamic;
    if (used.empty()) return base;
    for (size_t k : used)
      if (s.anonymous[k]) return ir::kDynamic;
    name = symbolic_name(c, used, s);
    return ir::kDynamic;
  }
};

// The probe values: distinct primes, so that no extent is a product of them by accident.
std::vector<int64_t> primes(size_t count, int64_t from) {
  std::vector<int64_t> out;
  for (int64_t n = from; out.size() < count; ++n) {
    bool prime = n > 1;
    for (int64_t d = 2; d * d <= n && prime; ++d) prime = n % d != 0;
    if (prime) out.push_back(n);
  }
  return out;
}

ValueTypes plain_types(const ir::Graph& graph, const DeclaredTypes* declared, const Symbols& symbols) {
  ValueTypes types = Run(graph, declared, symbols, nullptr).types();
  for (const ir::Value* in : graph.inputs()) types[in] = in->type;
  return types;
}

}  // namespace

ValueTypes symbolic_types(const ir::Graph& graph, const DeclaredTypes* declared) {
  Symbols symbols = collect_symbols(graph);
  if (symbols.names.empty()) return plain_types(graph, declared, symbols);
  const size_t n = symbols.names.size();
  std::vector<int64_t> all = primes(2 * n, 1009), small = primes(n, 2);
  std::vector<int64_t> a(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n)),
      b(all.begin() + static_cast<std::ptrdiff_t>(n), all.end());
  std::vector<ValueTypes> variants;
  ValueTypes base;
  try {
    base = std::move(Run(graph, declared, symbols, &a).types());
    for (size_t k = 0; k < n; ++k) {
      std::vector<int64_t> p = a;
      p[k] = b[k];
      variants.push_back(std::move(Run(graph, declared, symbols, &p).types()));
    }
  } catch (const Error&) {
    return plain_types(graph, declared, symbols);  // an op refused a probe: no symbols
  } catch (const c10::Error&) {
    return plain_types(graph, declared, symbols);
  }
  ValueTypes at_small;
  bool have_small = true;
  try {
    at_small = std::move(Run(graph, declared, symbols, &small).types());
  } catch (const Error&) {
    have_small = false;
  } catch (const c10::Error&) {
    have_small = false;
  }
  Solver solver{symbols, a, b, have_small ? &small : nullptr};
  ValueTypes out;
  for (auto& [v, t0] : base) {
    ir::TensorType t = t0;
    bool ranked = t.has_shape;
    for (const ValueTypes& var : variants) ranked = ranked && var.at(v).has_shape && var.at(v).rank() == t.rank();
    const ir::TensorType* ts = have_small ? &at_small.at(v) : nullptr;
    if (ts && (!ts->has_shape || ts->rank() != t.rank())) ranked = false;
    if (!ranked) {
      out[v] = ir::TensorType::unknown(t.dtype);
      continue;
    }
    t.dim_names.assign(t.dims.size(), "");
    bool named = false;
    for (size_t i = 0; i < t.dims.size(); ++i) {
      std::vector<int64_t> at_variant;
      for (const ValueTypes& var : variants) at_variant.push_back(var.at(v).dims[i]);
      t.dims[i] = solver.solve(t0.dims[i], at_variant, ts ? &ts->dims[i] : nullptr, t.dim_names[i]);
      named = named || !t.dim_names[i].empty();
    }
    if (!named) t.dim_names.clear();
    out[v] = std::move(t);
  }
  for (const ir::Value* in : graph.inputs()) {  // the inputs keep their own names
    ir::TensorType& t = out[in];
    t = in->type;
    if (!t.has_shape) continue;
    t.dim_names.resize(t.dims.size());
    for (size_t i = 0; i < t.dims.size(); ++i)
      if (auto it = symbols.at.find({in, i}); it != symbols.at.end() && !symbols.anonymous[it->second])
        t.dim_names[i] = symbols.names[it->second];
    if (std::all_of(t.dim_names.begin(), t.dim_names.end(), [](const std::string& n) { return n.empty(); }))
      t.dim_names.clear();
  }
  return out;
}

std::vector<std::pair<const ir::Value*, at::Tensor>> symbol_free_values(const ir::Graph& graph) {
  std::vector<std::pair<const ir::Value*, at::Tensor>> out;
  Symbols symbols = collect_symbols(graph);
  if (symbols.names.empty()) return out;  // constant folding knows these already
  const size_t n = symbols.names.size();
  std::vector<std::vector<int64_t>> probes{primes(n, 1009), primes(n, 2)};
  for (size_t k = 0; k < n; ++k) {
    probes.push_back(probes[0]);
    probes.back()[k] = primes(n + 1, probes[0].back() + 1)[k];
  }
  std::vector<std::unordered_map<const ir::Value*, at::Tensor>> runs;
  try {
    for (const auto& p : probes) runs.push_back(Run(graph, nullptr, symbols, &p).data());
  } catch (const Error&) {
    return out;
  } catch (const c10::Error&) {
    return out;
  }
  for (const auto& node : graph.nodes())
    for (const ir::Value* v : node->outputs()) {
      auto it = v ? runs[0].find(v) : runs[0].end();
      if (it == runs[0].end()) continue;
      bool same = true;
      for (size_t r = 1; r < runs.size() && same; ++r) {
        auto o = runs[r].find(v);
        same = o != runs[r].end() && o->second.scalar_type() == it->second.scalar_type() &&
               o->second.sizes() == it->second.sizes() && at::equal(o->second, it->second);
      }
      if (same) out.emplace_back(v, it->second);
    }
  return out;
}

void infer_shapes(ir::Graph& graph, const DeclaredTypes* declared) {
  ValueTypes types = symbolic_types(graph, declared);
  for (const auto& node : graph.nodes())
    for (ir::Value* out : node->outputs()) {
      if (!out) continue;
      out->type = types.at(out);
      // A value the graph would need at batch 1 beyond --max-tensor-bytes is refused
      // here, when the model is read, rather than when a run tries to allocate it.
      if (out->type.has_shape && out->type.dtype != at::ScalarType::Undefined) {
        std::vector<int64_t> dims = out->type.dims;
        for (int64_t& d : dims) d = d < 0 ? 1 : d;
        checked_tensor_bytes(dims, static_cast<int64_t>(c10::elementSize(out->type.dtype)),
                             node->describe() + ": output '" + out->name + "'");
      }
    }
  for (ir::Value* in : graph.inputs()) in->type = types.at(in);
}

void infer_node_types(const ir::Graph& graph, ir::Node& node, const DeclaredTypes* declared) {
  InferContext ctx{node, {}, {}};
  for (const ir::Value* in : node.inputs()) {
    ctx.inputs.push_back(in ? in->type : ir::TensorType::unknown(at::kFloat));
    const ir::Initializer* init = in ? graph.initializer(in->name) : nullptr;
    ctx.constants.push_back(init && init->kind == ir::InitKind::Constant ? &init->tensor : nullptr);
  }
  std::vector<ir::TensorType> types = infer_node(node, ctx);
  for (size_t i = 0; i < node.outputs().size(); ++i) {
    ir::Value* out = node.outputs()[i];
    if (!out) continue;
    SHRINK_CHECK(i < types.size(), node.describe(), ": has ", node.outputs().size(), " outputs, the op defines ",
                 types.size());
    auto it = declared ? declared->find(out->name) : DeclaredTypes::const_iterator{};
    out->type = declared && it != declared->end() ? merge(node, *out, it->second, types[i]) : types[i];
  }
}

void verify_graph(const ir::Graph& graph) {
  ir::verify_structure(graph);
  ValueTypes types = symbolic_types(graph);
  for (const auto& node : graph.nodes())
    for (const ir::Value* out : node->outputs()) {
      if (!out) continue;
      const ir::TensorType& t = types.at(out);
      SHRINK_CHECK(ir::compatible(out->type, t), node->describe(), ": output '", out->name, "' records ",
                   out->type.to_string(), " but inference gives ", t.to_string());
    }
}

}  // namespace shrink::ops
