#include "shrink/quantize/quantize.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <map>
#include <set>

#include "shrink/core/error.h"
#include "shrink/exec/session.h"
#include "shrink/ops/quant.h"
#include "shrink/ops/shape_inference.h"
#include "shrink/passes/pass.h"
#include "shrink/quantize/equalize.h"
#include "shrink/quantize/qat.h"

namespace shrink::quantize {
namespace {

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

const ir::Initializer* init_of(const ir::Graph& g, const ir::Value* v) {
  return v ? g.initializer(v->name) : nullptr;
}

// The axis of a layer's weight that indexes its output channels.
int64_t weight_axis(const ir::Node& n) {
  if (n.op_type == "Conv") return 0;
  if (n.op_type == "ConvTranspose") return 1;
  if (n.op_type == "Gemm") return n.attrs.get_int("transB", 0) ? 0 : 1;
  return 1;  // MatMul: [K, N]
}

// Why a candidate layer cannot be quantized (empty: it can).
std::string unsupported(const ir::Graph& g, const ir::Node& n) {
  const ir::Initializer* w = init_of(g, n.input(1));
  if (!w) return "its weight is not an initializer";
  if (!at::isFloatingType(w->tensor.scalar_type())) return "its weight is not float";
  if (n.op_type == "MatMul" && w->tensor.dim() != 2) return "MatMul weight of rank " + std::to_string(w->tensor.dim()) + " (2 expected)";
  if (n.op_type == "Gemm") {
    if (n.attrs.get_int("transA", 0)) return "Gemm with transA";
    if (n.attrs.get_float("alpha", 1.0f) != 1.0f) return "Gemm with alpha != 1";
    if (n.input(2) && n.attrs.get_float("beta", 1.0f) != 1.0f) return "Gemm with beta != 1";
  }
  if (n.input(2) && !init_of(g, n.input(2))) return "its bias is not an initializer";
  if (n.input(2) && n.op_type == "Gemm" && init_of(g, n.input(2))->tensor.numel() !=
                                               w->tensor.size(weight_axis(n)))
    return "Gemm bias is not one value per output";
  return {};
}

// Relu, or Clip from 0 (ReLU6): fused into the layer before it.
bool is_relu(const ir::Graph& g, const ir::Node& n) {
  if (n.op_type == "Relu") return true;
  if (n.op_type != "Clip") return false;
  if (n.attrs.has("min")) return n.attrs.get_float("min", -1) == 0.0f;
  const ir::Initializer* lo = init_of(g, n.input(1));
  return lo && lo->tensor.numel() == 1 && lo->tensor.item<double>() == 0.0;
}

// The value a layer's output is quantized at: after a fused Relu when the layer feeds
// only that; nullptr when that value is a graph output (logits stay float).
ir::Value* output_point(const ir::Graph& g, const ir::Node& n) {
  ir::Value* out = n.output(0);
  if (out->users.size() == 1 && is_relu(g, *out->users[0]) && !g.is_graph_output(out)) out = out->users[0]->output(0);
  return g.is_graph_output(out) ? nullptr : out;
}

ir::Value* add_constant(ir::Graph& g, const std::string& name, at::Tensor t) {
  return g.add_initializer(g.unique_name(name), std::move(t), ir::InitKind::Constant);
}

ir::Attributes axis_attr(int64_t axis) {
  ir::Attributes a;
  if (axis >= 0) a.set("axis", axis);
  return a;
}

// Inserts QuantizeLinear -> DequantizeLinear after v and moves v's users (not the new Q)
// onto the dequantized value.
void insert_qdq(ir::Graph& g, ir::Value* v, const QParams& p) {
  ir::Value* scale = add_constant(g, v->name + ".scale", p.scale.reshape({}));
  ir::Value* zp = add_constant(g, v->name + ".zero_point", p.zero_point.reshape({}));
  std::vector<ir::Node*> users = v->users;
  ir::Node* q;
  std::string qn = g.unique_name(v->name + ".quantize"), dn = g.unique_name(v->name + ".dequantize");
  if (v->producer) {
    q = g.insert_node_after(v->producer, "QuantizeLinear", {v, scale, zp}, {qn + ".out"}, {}, qn);
  } else {
    q = g.insert_node_before(g.nodes().front().get(), "QuantizeLinear", {v, scale, zp}, {qn + ".out"}, {}, qn);
  }
  ir::Node* d = g.insert_node_after(q, "DequantizeLinear", {q->output(0), scale, zp}, {dn + ".out"}, {}, dn);
  ops::infer_node_types(g, *q);
  ops::infer_node_types(g, *d);
  for (ir::Node* u : users)
    for (size_t i = 0; i < u->inputs().size(); ++i)
      if (u->input(i) == v) g.set_input(u, i, d->output(0));
}

// Weight (and bias) of a layer as int8 (int32) initializers behind DequantizeLinear.
// -(W_q - W) E[x] for one layer: `delta` = W_q - W, `mean` = E[x] per input channel.
at::Tensor bias_shift(const ir::Node& n, const at::Tensor& delta, const at::Tensor& mean) {
  at::Tensor d = delta.to(at::kDouble), m = mean.to(at::kDouble);
  if (n.op_type == "Gemm") return -(n.attrs.get_int("transB", 0) ? d.matmul(m) : m.matmul(d));
  // Conv: output o reads input channels [g * C/groups, (g + 1) * C/groups) of its group g.
  int64_t groups = n.attrs.get_int("group", 1), out = d.size(0), per_group = d.size(1);
  std::vector<int64_t> spatial;
  for (int64_t k = 2; k < d.dim(); ++k) spatial.push_back(k);
  at::Tensor per_in = spatial.empty() ? d : d.sum(spatial);  // [O, C/groups]
  at::Tensor idx = at::div(at::arange(out, at::kLong), out / groups, "floor").unsqueeze(1) * per_group +
                   at::arange(per_group, at::kLong).unsqueeze(0);  // [O, C/groups]
  return -(per_in * m.index({idx})).sum(1);
}

// A weight as int8, symmetric -127..127 (as ONNX Runtime: no -128 for the int8 x uint8
// kernels), per channel along `axis` (-1: per tensor), by the weight observer; `p` gets
// its scale and zero point.
at::Tensor int8_weight(const at::Tensor& w, const QuantizeOptions& o, int64_t axis, const std::string& name, QParams& p) {
  ObserverOptions wo = observer_options(o.weight_observer, at::kChar, true, axis);
  wo.qmin = -127;
  auto obs = make_observer(wo);
  obs->observe(w, name);
  p = obs->qparams(name);
  return ops::quantize_linear(w, p.scale, p.zero_point, at::kChar, std::max<int64_t>(axis, 0));
}

void quantize_weights(ir::Graph& g, ir::Node& n, const QuantizeOptions& o, const at::Tensor& input_scale,
                      LayerQuantization& report, const at::Tensor& input_mean = at::Tensor()) {
  ir::Value* wv = n.input(1);
  at::Tensor w = init_of(g, wv)->tensor.detach();
  int64_t axis = o.per_channel ? weight_axis(n) : -1;
  QParams p;
  at::Tensor wq = int8_weight(w, o, axis, wv->name, p);
  if (input_mean.defined() && n.op_type != "MatMul" && n.op_type != "ConvTranspose") {
    at::Tensor delta = ops::dequantize_linear(wq, p.scale, p.zero_point, std::max<int64_t>(axis, 0)) - w;
    at::Tensor shift = bias_shift(n, delta, input_mean).to(at::kFloat);
    if (ir::Value* bv = n.input(2)) {
      g.set_initializer_tensor(bv->name, (init_of(g, bv)->tensor.detach() + shift).contiguous());
    } else {
      g.set_input(&n, 2, g.add_initializer(g.unique_name(n.name + ".bias"), shift.contiguous(), ir::InitKind::Parameter));
    }
  }
  ir::Value* wq_v = add_constant(g, wv->name + ".int8", wq);
  ir::Value* ws = add_constant(g, wv->name + ".scale", p.scale);
  ir::Value* wz = add_constant(g, wv->name + ".zero_point", p.zero_point);
  std::string dn = g.unique_name(wv->name + ".dequantize");
  ir::Node* dq = g.insert_node_before(&n, "DequantizeLinear", {wq_v, ws, wz}, {dn + ".out"}, axis_attr(axis), dn);
  ops::infer_node_types(g, *dq);
  g.set_input(&n, 1, dq->output(0));
  report.weight_bytes_before += w.numel() * static_cast<int64_t>(w.element_size());
  report.weight_bytes_after += wq.numel();
  if (ir::Value* bv = n.input(2); bv && input_scale.defined()) {
    at::Tensor b = init_of(g, bv)->tensor.detach();
    at::Tensor bs = (input_scale.to(at::kDouble) * p.scale.to(at::kDouble)).to(at::kFloat).reshape({-1});
    if (bs.numel() == 1 && b.numel() > 1) bs = bs.expand({b.numel()}).contiguous();
    at::Tensor bq = ops::quantize_linear(b.reshape({-1}), bs, at::Tensor(), at::kInt, 0);
    ir::Value* bq_v = add_constant(g, bv->name + ".int32", bq);
    ir::Value* bsv = add_constant(g, bv->name + ".scale", bs);
    ir::Value* bz = add_constant(g, bv->name + ".zero_point", at::zeros({bs.numel()}, at::kInt));
    std::string bn = g.unique_name(bv->name + ".dequantize");
    ir::Node* bdq = g.insert_node_before(&n, "DequantizeLinear", {bq_v, bsv, bz}, {bn + ".out"}, axis_attr(0), bn);
    ops::infer_node_types(g, *bdq);
    g.set_input(&n, 2, bdq->output(0));
    report.weight_bytes_before += b.numel() * static_cast<int64_t>(b.element_size());
    report.weight_bytes_after += bq.numel() * 4;
  }
}

// Dynamic quantization of a Gemm / MatMul, in the form ONNX Runtime's dynamic quantizer
// writes (and fuses into DynamicQuantizeMatMul):
//   (xq, xs, xz) = DynamicQuantizeLinear(x)                  uint8, per batch
//   y = Cast(MatMulInteger(xq, Wq [K,N] int8, xz, 0)) * (xs * ws) [+ b]
// or, per token (int8 symmetric, one scale per row of x, as LLM.int8 and SmoothQuant's
// per-token setting), in standard ops any runtime runs:
//   s = Max(ReduceMax(Abs(x), axes=[-1], keepdims=1), 1e-12) / 127
//   y = Cast(MatMulInteger(Cast<int8>(Round(x / s)), Wq)) * s * ws [+ b]
void quantize_dynamic_layer(ir::Graph& g, ir::Node& n, const QuantizeOptions& o, LayerQuantization& report) {
  at::Tensor w = init_of(g, n.input(1))->tensor.detach().to(at::kFloat);
  if (n.op_type == "Gemm" && n.attrs.get_int("transB", 0)) w = w.t();
  w = w.contiguous();  // [K, N]
  int64_t axis = o.per_channel ? 1 : -1;
  std::string wname = n.input(1)->name;
  QParams p;
  at::Tensor wq = int8_weight(w, o, axis, wname, p);
  ir::Value* x = n.input(0);
  ir::Value* out = n.output(0);
  std::string base = g.unique_name(n.name + ".dynamic");
  ir::Value* wq_v = add_constant(g, wname + ".int8", wq);
  std::vector<int64_t> shape = o.per_channel ? std::vector<int64_t>{-1} : std::vector<int64_t>{};
  ir::Value* ws = add_constant(g, wname + ".scale", p.scale.reshape(shape));
  ir::Attributes to_float;
  to_float.set("to", static_cast<int64_t>(1));
  std::vector<ir::Node*> made;
  ir::Node* anchor = nullptr;  // the last node made
  auto node = [&](const std::string& op, std::vector<ir::Value*> in, ir::Attributes a, const std::string& what) {
    ir::Node* k = anchor ? g.insert_node_after(anchor, op, in, {base + "." + what}, std::move(a), base + "." + what)
                         : g.insert_node_before(&n, op, in, {base + "." + what}, std::move(a), base + "." + what);
    made.push_back(anchor = k);
    return k;
  };
  ir::Node* last;
  if (o.per_token) {
    ir::Node* mag = node("Abs", {x}, {}, "abs");
    ir::Attributes keep;
    keep.set("keepdims", static_cast<int64_t>(1));
    ir::Node* peak;
    if (g.opset >= 18) {
      peak = node("ReduceMax", {mag->output(0), add_constant(g, base + ".axes", at::tensor({int64_t{-1}}, at::kLong))}, keep, "peak");
    } else {
      keep.set("axes", std::vector<int64_t>{-1});
      peak = node("ReduceMax", {mag->output(0)}, keep, "peak");
    }
    ir::Node* floor = node("Max", {peak->output(0), add_constant(g, base + ".epsilon", at::scalar_tensor(1e-12f))}, {}, "floor");
    ir::Node* s = node("Div", {floor->output(0), add_constant(g, base + ".qmax", at::scalar_tensor(127.0f))}, {}, "xs");
    ir::Node* ratio = node("Div", {x, s->output(0)}, {}, "ratio");
    ir::Node* rounded = node("Round", {ratio->output(0)}, {}, "round");
    ir::Attributes to_int8;
    to_int8.set("to", static_cast<int64_t>(3));
    ir::Node* codes = node("Cast", {rounded->output(0)}, to_int8, "xq");
    ir::Node* mm = node("MatMulInteger", {codes->output(0), wq_v}, {}, "acc");
    ir::Node* cast = node("Cast", {mm->output(0)}, to_float, "accf");
    ir::Node* rows = node("Mul", {cast->output(0), s->output(0)}, {}, "rows");
    last = node("Mul", {rows->output(0), ws}, {}, "y");
  } else {
    ir::Node* dql = g.insert_node_before(&n, "DynamicQuantizeLinear", {x}, {base + ".xq", base + ".xs", base + ".xz"}, {},
                                         base + ".quantize");
    made.push_back(anchor = dql);
    ir::Value* wz = add_constant(g, wname + ".zero_point", p.zero_point.reshape(shape).to(at::kChar));
    ir::Node* mm = node("MatMulInteger", {dql->output(0), wq_v, dql->output(2), wz}, {}, "acc");
    ir::Node* cast = node("Cast", {mm->output(0)}, to_float, "accf");
    ir::Node* scale = node("Mul", {dql->output(1), ws}, {}, "s");
    last = node("Mul", {cast->output(0), scale->output(0)}, {}, "y");
  }
  int64_t bias_bytes = 0;
  if (n.op_type == "Gemm" && n.input(2)) {
    ir::Value* b = n.input(2);
    bias_bytes = init_of(g, b)->tensor.numel() * 4;
    last = g.insert_node_after(last, "Add", {last->output(0), b}, {base + ".biased"}, {}, base + ".bias");
    made.push_back(last);
  }
  for (ir::Node* k : made) ops::infer_node_types(g, *k);
  std::string name = out->name;
  g.replace_all_uses(out, last->output(0));
  g.remove_node(&n);
  g.rename_value(last->output(0), name);
  report.weight_bytes_before += w.numel() * 4 + bias_bytes;
  report.weight_bytes_after += wq.numel() + bias_bytes;
}

// 4-bit symmetric weights (-8..7, scale max|w| / 7) per group of `group` along K of a
// [K, N] view of the weight, stored as uint8 pairs (the group's first half in the low
// nibbles, its second half in the high ones) and unpacked in the graph.
void quantize_int4_layer(ir::Graph& g, ir::Node& n, int64_t group, LayerQuantization& report) {
  ir::Value* wv = n.input(1);
  at::Tensor w = init_of(g, wv)->tensor.detach().to(at::kFloat);
  bool trans_b = n.op_type == "Gemm" && n.attrs.get_int("transB", 0);
  at::Tensor kn = (trans_b ? w.t() : w).contiguous();  // [K, N]
  int64_t K = kn.size(0), N = kn.size(1);
  at::Tensor grouped = kn.reshape({K / group, group, N});
  at::Tensor scale = grouped.abs().amax(1, true) / 7.0;
  scale = at::where(scale > 0, scale, at::ones_like(scale));
  at::Tensor q = at::clamp(at::round(grouped / scale), -8, 7).to(at::kInt) + 8;  // 0..15
  at::Tensor packed = (q.slice(1, 0, group / 2) + 16 * q.slice(1, group / 2, group)).to(at::kByte).contiguous();
  std::string base = g.unique_name(wv->name + ".int4");
  auto constant = [&](const std::string& suffix, at::Tensor t) { return add_constant(g, base + suffix, std::move(t)); };
  ir::Value* p = constant(".packed", packed);
  ir::Attributes to_int, to_float, axis1;
  to_int.set("to", static_cast<int64_t>(6));  // int32
  to_float.set("to", static_cast<int64_t>(1));
  axis1.set("axis", static_cast<int64_t>(1));
  std::vector<ir::Node*> made;
  auto node = [&](const std::string& op, std::vector<ir::Value*> in, ir::Attributes a, const std::string& what) {
    ir::Node* k = g.insert_node_before(&n, op, in, {base + "." + what}, std::move(a), base + "." + what);
    ops::infer_node_types(g, *k);
    made.push_back(k);
    return k->output(0);
  };
  ir::Value* pi = node("Cast", {p}, to_int, "wide");
  ir::Value* sixteen = constant(".sixteen", at::scalar_tensor(16, at::kInt));
  ir::Value* lo = node("Mod", {pi, sixteen}, {}, "low");
  ir::Value* hi = node("Div", {pi, sixteen}, {}, "high");
  ir::Value* all = node("Concat", {lo, hi}, axis1, "nibbles");
  ir::Value* f = node("Cast", {all}, to_float, "float");
  ir::Value* centred = node("Sub", {f, constant(".eight", at::scalar_tensor(8.0f))}, {}, "centred");
  ir::Value* scaled = node("Mul", {centred, constant(".scale", scale.contiguous())}, {}, "scaled");
  ir::Value* w_kn = node("Reshape", {scaled, constant(".shape", at::tensor({K, N}, at::kLong))}, {}, "weight");
  g.set_input(&n, 1, w_kn);
  if (trans_b) n.attrs.set("transB", static_cast<int64_t>(0));
  ops::infer_node_types(g, n);
  report.weight_bytes_before += w.numel() * 4;
  report.weight_bytes_after += packed.numel() + scale.numel() * 4;
}

// Every float parameter as float16 behind a Cast to float.
void store_fp16(ir::Graph& g, QuantizeResult& result) {
  std::vector<std::string> names;
  for (const auto& [name, init] : g.initializers())
    if (init.kind == ir::InitKind::Parameter && init.tensor.scalar_type() == at::kFloat) names.push_back(name);
  ir::Attributes to_float;
  to_float.set("to", static_cast<int64_t>(1));
  for (const std::string& name : names) {
    ir::Value* v = g.value(name);
    if (v->users.empty()) continue;
    at::Tensor h = g.initializer(name)->tensor.detach().to(at::kHalf);
    ir::Value* hv = add_constant(g, name + ".fp16", h);
    std::string cn = g.unique_name(name + ".to_float");
    // First among the nodes: it reads only an initializer and precedes every user.
    ir::Node* cast = g.insert_node_before(g.nodes().front().get(), "Cast", {hv}, {cn + ".out"}, to_float, cn);
    g.replace_all_uses(v, cast->output(0));
    ops::infer_node_types(g, *cast);
    result.layers.push_back({name, "fp16", h.numel() * 4, h.numel() * 2, ""});
  }
}

}  // namespace

QuantizeResult quantize(ir::Graph& g, const QuantizeOptions& o,
                        const std::function<bool(std::vector<at::Tensor>&)>& calibration) {
  SHRINK_CHECK(o.mode == "static" || o.mode == "dynamic" || o.mode == "qat" || o.mode == "weight-only" || o.mode == "fp16",
               "--mode: '", o.mode, "' is not static, dynamic, qat, weight-only or fp16");
  SHRINK_CHECK(o.bits == 8 || o.bits == 4, "--bits must be 8 or 4, got ", o.bits);
  SHRINK_CHECK(o.group_size >= 2 && o.group_size % 2 == 0, "--group-size must be even and at least 2, got ", o.group_size);
  SHRINK_CHECK(o.mode != "qat" || o.train, "quantize: qat mode needs a training function");
  SHRINK_CHECK(!o.per_token || o.mode == "dynamic", "--per-token: only with dynamic mode, got --mode ", o.mode);
  for (const auto& name : o.exclude_nodes)
    SHRINK_CHECK(g.find_node(name), "--exclude: no node named '", name, "' in the model");
  for (const auto& n : g.nodes())
    SHRINK_CHECK(n->op_type != "QuantizeLinear" && n->op_type != "DequantizeLinear" && n->domain.empty(),
                 n->describe(), ": the model is already quantized (quantize its float original)");
  passes::make_pipeline("portable").run(g);

  QuantizeResult result;
  if (o.equalize) result.equalized = equalize_layers(g);
  // SmoothQuant reads the calibration batches first; the observers then see the same ones.
  std::vector<std::vector<at::Tensor>> kept;
  auto replay = [&kept]() -> std::function<bool(std::vector<at::Tensor>&)> {
    if (kept.empty()) return nullptr;
    return [&kept, at = size_t(0)](std::vector<at::Tensor>& b) mutable {
      if (at >= kept.size()) return false;
      b = kept[at++];
      return true;
    };
  };
  if (o.smooth >= 0) {
    SHRINK_CHECK(o.mode == "static" || o.mode == "dynamic" || o.mode == "qat", "--smooth: only with static, dynamic or qat mode");
    std::vector<at::Tensor> batch;
    while (calibration && calibration(batch)) kept.push_back(batch);
    result.smoothed = smooth_activations(g, o.smooth, replay());
  }
  const std::function<bool(std::vector<at::Tensor>&)> batches = o.smooth >= 0 ? replay() : calibration;
  if (o.mode == "fp16") {
    store_fp16(g, result);
    g.remove_unused_values();
    return result;
  }
  std::vector<ir::Node*> layers;
  for (const auto& node : g.nodes()) {
    ir::Node& n = *node;
    if (!contains(o.ops, n.op_type)) continue;
    LayerQuantization l{n.name, n.op_type};
    if (contains(o.exclude_nodes, n.name) || contains(o.exclude_ops, n.op_type)) {
      l.skipped = "excluded";
    } else {
      l.skipped = unsupported(g, n);
    }
    if (l.skipped.empty()) layers.push_back(&n);
    result.layers.push_back(l);
  }
  auto report_of = [&](const ir::Node* n) -> LayerQuantization& {
    for (auto& l : result.layers)
      if (l.node == n->name) return l;
    fail("internal: no report for ", n->name);
  };

  if (o.mode == "weight-only") {
    for (ir::Node* n : layers) {
      LayerQuantization& l = report_of(n);
      if (n->op_type == "Conv") {
        l.skipped = "weight-only mode quantizes Gemm and MatMul";
      } else if (o.bits == 8) {
        quantize_weights(g, *n, o, at::Tensor(), l);
      } else {
        const at::Tensor& w = init_of(g, n->input(1))->tensor;
        int64_t k = w.size(n->op_type == "Gemm" && n->attrs.get_int("transB", 0) ? 1 : 0);
        if (k % o.group_size != 0) {
          l.skipped = "its " + std::to_string(k) + " inputs are not a multiple of --group-size " + std::to_string(o.group_size);
          continue;
        }
        quantize_int4_layer(g, *n, o.group_size, l);
      }
    }
    g.remove_unused_values();
    return result;
  }
  if (o.mode == "dynamic") {
    for (ir::Node* n : layers) {
      if (n->op_type == "Conv") {
        report_of(n).skipped = "dynamic mode quantizes Gemm and MatMul (use static for convolutions)";
        continue;
      }
      quantize_dynamic_layer(g, *n, o, report_of(n));
    }
    g.remove_unused_values();
    return result;
  }

  // The activation points: each layer's data input and its (Relu-fused) output, and both
  // inputs and the output of an Add joining two of them (a residual connection).
  std::vector<ir::Value*> points;
  std::set<const ir::Value*> seen;
  auto point = [&](ir::Value* v) {
    if (v && !g.is_initializer(v) && seen.insert(v).second) points.push_back(v);
  };
  for (ir::Node* n : layers) {
    point(n->input(0));
    point(output_point(g, *n));
  }
  for (const auto& node : g.nodes()) {
    if (node->op_type != "Add" || node->inputs().size() != 2) continue;
    if (!seen.count(node->input(0)) || !seen.count(node->input(1))) continue;
    ir::Value* out = node->output(0);
    if (out->users.size() == 1 && is_relu(g, *out->users[0])) out = out->users[0]->output(0);
    if (!g.is_graph_output(out)) point(out);
  }
  // Ops that only move or select values (MaxPool, Flatten) take their input's
  // parameters when their output is quantized: the input is quantized too, and the op then
  // runs on the int8 values as it is (ONNX Runtime does the same). Walked backwards, so a
  // Flatten after a MaxPool ties both to the layer before.
  std::map<const ir::Value*, ir::Value*> tied;  // output -> the input whose parameters it takes
  for (auto it = g.nodes().rbegin(); it != g.nodes().rend(); ++it) {
    ir::Node& n = **it;
    bool moves = n.op_type == "MaxPool" || n.op_type == "Flatten";
    if (!moves || !seen.count(n.output(0)) || n.outputs().size() != 1 || g.is_initializer(n.input(0))) continue;
    point(n.input(0));
    tied[n.output(0)] = n.input(0);
  }
  SHRINK_CHECK(!points.empty(), "quantize: no layer to quantize (Conv, Gemm or MatMul with initializer weights)");

  // Calibration: every point tapped, each batch observed.
  std::vector<std::unique_ptr<Observer>> observers;
  exec::SessionOptions so;
  for (ir::Value* v : points) {
    ObserverOptions ao = observer_options(o.observer, o.symmetric_activations ? at::kChar : at::kByte,
                                          o.symmetric_activations);
    ao.bins = o.bins;
    ao.percentile = o.percentile;
    observers.push_back(make_observer(ao));
    so.taps.push_back(v->name);
  }
  // Bias correction: the per-channel mean of each layer input (channels on axis 1 for
  // convolutions, last for Gemm).
  struct ChannelSum {
    bool conv = false;
    at::Tensor sum;
    int64_t count = 0;
  };
  std::map<const ir::Value*, ChannelSum> sums;
  if (o.bias_correction)
    for (ir::Node* n : layers) sums[n->input(0)].conv = n->op_type == "Conv";
  auto accumulate = [&](const ir::Value* v, const at::Tensor& x) {
    auto it = sums.find(v);
    if (it == sums.end() || x.dim() < 2) return;
    int64_t axis = it->second.conv ? 1 : x.dim() - 1;
    at::Tensor t = x.detach().to(at::kDouble).movedim(axis, 0).reshape({x.size(axis), -1});
    at::Tensor part = t.sum(1);
    it->second.sum = it->second.sum.defined() ? it->second.sum + part : part;
    it->second.count += t.size(1);
  };
  {
    exec::Session session(g, so);
    std::vector<at::Tensor> batch;
    while (batches && batches(batch)) {
      session.run(batch);
      for (size_t i = 0; i < points.size(); ++i) {
        observers[i]->observe(session.tap(i), points[i]->name);
        accumulate(points[i], session.tap(i));
      }
      ++result.calibration_batches;
    }
  }
  SHRINK_CHECK(result.calibration_batches > 0, "quantize: static mode needs calibration data; got no batch");

  std::map<const ir::Value*, QParams> params;
  for (size_t i = 0; i < points.size(); ++i)
    if (!tied.count(points[i])) params[points[i]] = observers[i]->qparams(points[i]->name);
  for (const auto& [v, in] : tied) {  // a chain of ties ends at an observed value
    const ir::Value* root = v;
    while (tied.count(root)) root = tied.at(root);
    params[v] = params.at(root);
  }
  for (ir::Node* n : layers) {
    auto it = params.find(n->input(0));
    at::Tensor mean;
    if (auto s = sums.find(n->input(0)); s != sums.end() && s->second.count > 0) mean = s->second.sum / s->second.count;
    quantize_weights(g, *n, o, it == params.end() ? at::Tensor() : it->second.scale, report_of(n), mean);
  }
  for (ir::Value* v : points) {
    insert_qdq(g, v, params.at(v));
    result.activations.push_back(v->name);
  }
  g.remove_unused_values();
  if (o.mode == "qat") {
    to_fake_quant(g, o.learnable_scales);
    o.train(g);
    from_fake_quant(g);
  }
  return result;
}

FallbackResult sensitivity_fallback(const ir::Graph& float_graph, const QuantizeOptions& o,
                                    const CalibrationSource& calibration,
                                    const std::function<double(const ir::Graph&)>& accuracy, double max_drop) {
  SHRINK_CHECK(o.mode == "static", "the sensitivity report and the fallback need --mode static, got ", o.mode);
  QuantizeResult full;
  auto quantized_accuracy = [&](const std::vector<std::string>& floats, QuantizeResult* out) {
    ir::Graph g = float_graph.clone();
    QuantizeOptions q = o;
    q.exclude_nodes.insert(q.exclude_nodes.end(), floats.begin(), floats.end());
    QuantizeResult r = quantize(g, q, calibration());
    if (out) *out = r;
    passes::make_pipeline("inference").run(g);  // as deployed: the int8 kernels
    return accuracy(g);
  };
  FallbackResult f;
  f.float_accuracy = accuracy(float_graph);
  f.quantized_accuracy = f.final_accuracy = quantized_accuracy({}, &full);
  for (const auto& l : full.layers) {
    if (!l.skipped.empty()) continue;
    f.layers.push_back({l.node, l.op, quantized_accuracy({l.node}, nullptr)});
  }
  std::stable_sort(f.layers.begin(), f.layers.end(), [](const auto& a, const auto& b) { return a.accuracy > b.accuracy; });
  if (max_drop < 0) return f;
  for (size_t i = 0; i < f.layers.size() && 100 * (f.float_accuracy - f.final_accuracy) > max_drop + 1e-9; ++i) {
    f.kept_float.push_back(f.layers[i].node);
    f.final_accuracy = i + 1 == f.layers.size() ? f.float_accuracy : quantized_accuracy(f.kept_float, nullptr);
  }
  return f;
}

}  // namespace shrink::quantize
