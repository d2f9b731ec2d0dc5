// lower_int8: runs a QDQ graph on int8 kernels, as ONNX Runtime's QDQ transformer does.
//   QuantizeLinear(float activation, uint8)            -> Int8Quantize
//   DQ(x) -> Conv(DQ(w int8), DQ(b int32)) [-> Relu] -> QuantizeLinear  -> Int8Conv (relu fused)
//   DQ(x) -> Gemm / MatMul(DQ(w int8)) [-> Relu] -> QuantizeLinear      -> Int8Linear
//   DQ(a) + DQ(b) [-> Relu] -> QuantizeLinear                           -> Int8Add
//   DQ(q) -> MaxPool / Flatten -> QuantizeLinear (q's parameters)      -> Int8MaxPool / Int8Flatten
//   DequantizeLinear of an int8 value feeding float ops                 -> Int8Dequantize
//   DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul [-> Add]      -> Int8DynamicLinear
//   per-token quantization (Abs, ReduceMax, Max, Div, Round, Cast)
//     -> MatMulInteger -> Cast -> Mul -> Mul [-> Add]                    -> Int8DynamicLinear (per_token)
// A Clip(0, m) counts as a Relu when the output's quantized range already ends at or
// below m. What does not match stays as it is, and the weights' remaining
// DequantizeLinear nodes are folded into float constants (the fake-quantized values), so
// the graph computes what the QDQ model specifies either way.
#include <ATen/ATen.h>

#include <cmath>
#include <unordered_set>

#include "shrink/ops/int8.h"
#include "shrink/ops/quant.h"
#include "shrink/ops/window.h"
#include "shrink/passes/inference_passes.h"

namespace shrink::passes {
namespace {

constexpr const char* kDomain = "ai.shrink";

const at::Tensor* constant(const ir::Graph& g, const ir::Value* v) {
  const ir::Initializer* init = v ? g.initializer(v->name) : nullptr;
  return init ? &init->tensor : nullptr;
}

bool scalar_constant(const ir::Graph& g, const ir::Value* v) {
  const at::Tensor* t = constant(g, v);
  return t && t->numel() == 1;
}

bool is_int8_producer(const ir::Node* n) {
  return n && n->domain == kDomain && n->op_type != "Int8Dequantize" && n->op_type != "Int8DynamicLinear";
}

// The (scale, zero point) inputs of an int8 producer (a value-moving op: its input's).
std::pair<ir::Value*, ir::Value*> qparams_of(const ir::Node& n) {
  if (n.op_type == "Int8MaxPool" || n.op_type == "Int8Flatten") return qparams_of(*n.input(0)->producer);
  size_t at = n.op_type == "Int8Quantize" ? 1 : n.op_type == "Int8Add" ? 2 : 4;
  return {n.input(at), n.input(at + 1)};
}

bool same_scalar(const ir::Graph& g, const ir::Value* a, const ir::Value* b) {
  if (a == b) return true;
  const at::Tensor* x = constant(g, a);
  const at::Tensor* y = constant(g, b);
  return x && y && x->numel() == 1 && y->numel() == 1 && x->item<double>() == y->item<double>();
}

// The int8 value a float value dequantizes, if it is DequantizeLinear(int8 value) with
// the same parameters the value was quantized with.
ir::Value* int8_source(const ir::Graph& g, const ir::Value* v) {
  const ir::Node* dq = v ? v->producer : nullptr;
  if (!dq || dq->op_type != "DequantizeLinear" || !dq->domain.empty()) return nullptr;
  ir::Value* q = dq->input(0);
  if (!is_int8_producer(q->producer)) return nullptr;
  auto [scale, zp] = qparams_of(*q->producer);
  if (!same_scalar(g, dq->input(1), scale) || !dq->input(2) || !same_scalar(g, dq->input(2), zp)) return nullptr;
  return q;
}

// A weight given as DequantizeLinear(int8 initializer, scale, zero point 0) with its scale
// per tensor or along `axis`.
struct Int8Weight {
  ir::Value *w = nullptr, *scale = nullptr;
  int64_t axis = -1;  // -1: per tensor
};

bool int8_weight(const ir::Graph& g, const ir::Value* v, Int8Weight& out) {
  const ir::Node* dq = v ? v->producer : nullptr;
  if (!dq || dq->op_type != "DequantizeLinear" || !dq->domain.empty()) return false;
  const at::Tensor* w = constant(g, dq->input(0));
  const at::Tensor* s = constant(g, dq->input(1));
  if (!w || !s || w->scalar_type() != at::kChar || s->scalar_type() != at::kFloat) return false;
  if (dq->input(2)) {
    const at::Tensor* z = constant(g, dq->input(2));
    if (!z || z->ne(0).any().item<bool>()) return false;
  }
  if (s->le(0).any().item<bool>()) return false;
  out.w = dq->input(0);
  out.scale = dq->input(1);
  out.axis = -1;
  if (s->numel() > 1) {
    int64_t axis = dq->attrs.get_int("axis", 1);
    if (axis < 0) axis += w->dim();
    if (axis < 0 || axis >= w->dim() || w->size(axis) != s->numel()) return false;
    out.axis = axis;
  }
  return true;
}

// A float bias: absent, a float initializer, or DequantizeLinear of one (int32 bias).
bool float_bias(ir::Graph& g, ir::Value* v, int64_t n_out, ir::Value*& out) {
  out = nullptr;
  at::Tensor b;
  if (!v) {  // a layer without bias (a factorized layer's first factor) gets zeros: the int8 ops take input 3
    b = at::zeros({n_out}, at::kFloat);
  } else if (const at::Tensor* t = constant(g, v)) {
    b = *t;
  } else if (v->producer && v->producer->op_type == "DequantizeLinear" && v->producer->domain.empty()) {
    const ir::Node* dq = v->producer;
    const at::Tensor* q = constant(g, dq->input(0));
    const at::Tensor* s = constant(g, dq->input(1));
    const at::Tensor* z = dq->input(2) ? constant(g, dq->input(2)) : nullptr;
    if (!q || !s || (dq->input(2) && !z)) return false;
    b = ops::dequantize_linear(*q, *s, z ? *z : at::Tensor(), 0);
  } else {
    return false;
  }
  if (!b.is_floating_point() || b.numel() != n_out) return false;
  out = g.add_initializer(g.unique_name((v ? v->name : "zero_bias") + ".float"), b.to(at::kFloat).reshape({n_out}).contiguous(),
                          ir::InitKind::Constant);
  return true;
}

// What follows a layer: an optional Relu (or an equivalent Clip) and the QuantizeLinear,
// already an Int8Quantize, that gives the layer's int8 output.
struct Tail {
  ir::Node* quantize = nullptr;
  bool relu = false;
};

bool quantized_tail(const ir::Graph& g, ir::Value* out, Tail& tail) {
  tail = {};
  double clip_max = -1;
  if (out->users.size() == 1 && !g.is_graph_output(out)) {
    ir::Node* u = out->users[0];
    if (u->op_type == "Relu") {
      tail.relu = true;
      out = u->output(0);
    } else if (u->op_type == "Clip" && u->input(0) == out) {
      double lo = -1, hi = -1;
      if (u->attrs.has("min")) {
        lo = u->attrs.get_float("min", -1);
        hi = u->attrs.get_float("max", -1);
      } else if (scalar_constant(g, u->input(1)) && (!u->input(2) || scalar_constant(g, u->input(2)))) {
        lo = constant(g, u->input(1))->item<double>();
        hi = u->input(2) ? constant(g, u->input(2))->item<double>() : -1;
      }
      if (lo != 0) return false;
      tail.relu = true;
      clip_max = hi;
      out = u->output(0);
    }
  }
  if (g.is_graph_output(out) || out->users.size() != 1) return false;
  ir::Node* q = out->users[0];
  if (q->op_type != "Int8Quantize" || q->input(0) != out || g.is_graph_output(q->output(0))) return false;
  if (clip_max >= 0) {  // the quantized range must end at or below the clip's upper bound
    double scale = constant(g, q->input(1))->item<double>();
    double zp = constant(g, q->input(2))->item<double>();
    if ((255 - zp) * scale > clip_max * (1 + 1e-6)) return false;
  }
  tail.quantize = q;
  return true;
}

ir::Node* add_int8_node(ir::Graph& g, ir::Node* layer, const std::string& op, const std::vector<ir::Value*>& inputs,
                        ir::Attributes attrs, const Tail& tail) {
  ir::Value* q_out = tail.quantize->output(0);
  attrs.set("relu", static_cast<int64_t>(tail.relu));
  ir::Node* k = g.insert_node_before(layer, op, inputs, {g.unique_name(q_out->name + ".int8")}, std::move(attrs),
                                     g.unique_name(layer->name + ".int8"));
  k->domain = kDomain;
  k->output(0)->type = q_out->type;
  g.replace_all_uses(q_out, k->output(0));
  return k;
}

bool lower_conv(ir::Graph& g, ir::Node* n) {
  ir::Value* x = int8_source(g, n->input(0));
  Int8Weight w;
  if (!x || !int8_weight(g, n->input(1), w) || (w.axis != -1 && w.axis != 0)) return false;
  const at::Tensor& wt = *constant(g, w.w);
  if (wt.dim() != 4 || !n->input(0)->type.has_shape || n->input(0)->type.rank() != 4) return false;
  if (n->attrs.get_string("auto_pad", "NOTSET") != "NOTSET") return false;
  ops::Window win = ops::read_window(n->attrs, {wt.size(2), wt.size(3)});
  if (!win.symmetric()) return false;
  ir::Value* bias;
  if (!float_bias(g, n->input(2), wt.size(0), bias)) return false;
  Tail tail;
  if (!quantized_tail(g, n->output(0), tail)) return false;
  ir::Attributes a;
  a.set("kernel_shape", win.kernel);
  a.set("strides", win.strides);
  a.set("dilations", win.dilations);
  std::vector<int64_t> pads = win.pads_begin;
  pads.insert(pads.end(), win.pads_end.begin(), win.pads_end.end());
  a.set("pads", pads);
  a.set("group", n->attrs.get_int("group", 1));
  auto [ys, yz] = std::pair{tail.quantize->input(1), tail.quantize->input(2)};
  add_int8_node(g, n, "Int8Conv", {x, w.w, w.scale, bias, ys, yz}, a, tail);
  return true;
}

bool lower_linear(ir::Graph& g, ir::Node* n) {
  ir::Value* x = int8_source(g, n->input(0));
  Int8Weight w;
  if (!x || !int8_weight(g, n->input(1), w)) return false;
  const at::Tensor& wt = *constant(g, w.w);
  if (wt.dim() != 2 || !n->input(0)->type.has_shape || n->input(0)->type.rank() < 2) return false;
  bool trans_b = false;
  if (n->op_type == "Gemm") {
    if (n->attrs.get_int("transA", 0) || n->attrs.get_float("alpha", 1) != 1.0f) return false;
    if (n->input(2) && n->attrs.get_float("beta", 1) != 1.0f) return false;
    if (n->input(0)->type.rank() != 2) return false;
    trans_b = n->attrs.get_int("transB", 0) != 0;
  }
  // Int8Linear takes the weight as [N, K] with the scale along N.
  int64_t n_axis = trans_b ? 0 : 1;
  if (w.axis != -1 && w.axis != n_axis) return false;
  ir::Value* bias;
  if (!float_bias(g, n->op_type == "Gemm" ? n->input(2) : nullptr, wt.size(n_axis), bias)) return false;
  Tail tail;
  if (!quantized_tail(g, n->output(0), tail)) return false;
  ir::Value* w_nk = w.w;
  if (!trans_b)
    w_nk = g.add_initializer(g.unique_name(w.w->name + ".nk"), wt.t().contiguous(), ir::InitKind::Constant);
  auto [ys, yz] = std::pair{tail.quantize->input(1), tail.quantize->input(2)};
  add_int8_node(g, n, "Int8Linear", {x, w_nk, w.scale, bias, ys, yz}, {}, tail);
  return true;
}

bool lower_add(ir::Graph& g, ir::Node* n) {
  if (n->inputs().size() != 2) return false;
  ir::Value* a = int8_source(g, n->input(0));
  ir::Value* b = int8_source(g, n->input(1));
  // Same shapes (an unknown batch extent aside): quantized::add does not broadcast.
  const ir::TensorType &ta = n->input(0)->type, &tb = n->input(1)->type;
  if (!a || !b || !ta.has_shape || ta.dims != tb.dims) return false;
  for (size_t i = 1; i < ta.dims.size(); ++i)
    if (ta.dims[i] < 0) return false;
  Tail tail;
  if (!quantized_tail(g, n->output(0), tail)) return false;
  add_int8_node(g, n, "Int8Add", {a, b, tail.quantize->input(1), tail.quantize->input(2)}, {}, tail);
  return true;
}

ir::Node* single_user(const ir::Graph& g, const ir::Value* v, const char* op) {
  if (!v || g.is_graph_output(v) || v->users.size() != 1 || v->users[0]->op_type != op) return nullptr;
  return v->users[0];
}

// The node's input other than `v` (binary ops), or nullptr when v is not one of two inputs.
ir::Value* other_input(const ir::Node* n, const ir::Value* v) {
  if (!n || n->inputs().size() != 2) return nullptr;
  if (n->input(0) == v) return n->input(1);
  return n->input(1) == v ? n->input(0) : nullptr;
}

// The float scalar a constant holds, or NaN.
double scalar_value(const ir::Graph& g, const ir::Value* v) {
  const at::Tensor* t = constant(g, v);
  return t && t->numel() == 1 && t->is_floating_point() ? t->item<double>() : std::nan("");
}

// Puts Int8DynamicLinear(x, W^T, ws, b) in place of a dynamic layer whose MatMulInteger is
// `mm` (W int8 [K, N], its zero point 0) and whose float output is
// Mul(Cast(mm), a) with `a` = Mul(xs, ws) (per tensor) or Mul(Mul(Cast(mm), xs), ws) (per
// token), then an optional bias Add. The end value keeps its name (it may be a graph
// output); returns the rename to make.
bool lower_dynamic_tail(ir::Graph& g, ir::Node* mm, ir::Value* x, ir::Value* xs, bool per_token, ir::Node* first,
                        std::vector<std::pair<ir::Value*, std::string>>& renames) {
  const at::Tensor* w = constant(g, mm->input(1));
  if (!w || w->scalar_type() != at::kChar || w->dim() != 2) return false;
  if (mm->input(3)) {
    const at::Tensor* wz = constant(g, mm->input(3));
    if (!wz || wz->ne(0).any().item<bool>()) return false;
  }
  int64_t n_out = w->size(1);
  ir::Node* cast = single_user(g, mm->output(0), "Cast");
  if (!cast || cast->attrs.get_int("to", 0) != 1) return false;
  ir::Node* rescale = single_user(g, cast->output(0), "Mul");
  if (!rescale) return false;
  ir::Value* ws = nullptr;
  if (per_token) {  // Mul(Cast(acc), xs) -> Mul(., ws)
    if (other_input(rescale, cast->output(0)) != xs) return false;
    ir::Node* by_weight = single_user(g, rescale->output(0), "Mul");
    if (!by_weight) return false;
    ws = other_input(by_weight, rescale->output(0));
    rescale = by_weight;
  } else {  // Mul(Cast(acc), Mul(xs, ws))
    ir::Node* scale = xs->users.size() == 1 ? xs->users[0] : nullptr;
    if (!scale || scale->op_type != "Mul" || scale->output(0)->users.size() != 1 ||
        scale->output(0)->users[0] != rescale || other_input(rescale, cast->output(0)) != scale->output(0))
      return false;
    ws = other_input(scale, xs);
  }
  const at::Tensor* wst = constant(g, ws);
  if (!wst || wst->scalar_type() != at::kFloat || (wst->numel() != 1 && wst->numel() != n_out) ||
      wst->le(0).any().item<bool>())
    return false;
  ir::Node* end = rescale;
  ir::Value* bias = nullptr;
  if (ir::Node* add = single_user(g, rescale->output(0), "Add")) {
    ir::Value* b = add->input(0) == rescale->output(0) ? add->input(1) : add->input(0);
    const at::Tensor* bt = constant(g, b);
    if (bt && bt->is_floating_point() && bt->numel() == n_out && bt->size(-1) == n_out) {
      bias = g.add_initializer(g.unique_name(b->name + ".float"), bt->to(at::kFloat).reshape({n_out}),
                               ir::InitKind::Constant);
      end = add;
    }
  }
  if (!x->type.has_shape || x->type.rank() < 2) return false;
  ir::Value* w_nk = g.add_initializer(g.unique_name(mm->input(1)->name + ".nk"), w->t().contiguous(), ir::InitKind::Constant);
  ir::Value* scales = g.add_initializer(g.unique_name(ws->name + ".n"), wst->reshape({-1}).contiguous(), ir::InitKind::Constant);
  ir::Value* y = end->output(0);
  ir::Attributes a;
  if (per_token) a.set("per_token", static_cast<int64_t>(1));
  ir::Node* k = g.insert_node_before(first, "Int8DynamicLinear", {x, w_nk, scales, bias},
                                     {g.unique_name(y->name + ".int8")}, a, g.unique_name(mm->name + ".int8"));
  k->domain = kDomain;
  k->output(0)->type = y->type;
  std::string name = y->name;
  g.replace_all_uses(y, k->output(0));
  renames.push_back({k->output(0), name});
  return true;
}

// DynamicQuantizeLinear(x) -> MatMulInteger(xq, W int8 [K,N], xz, 0) -> Cast(float)
//   -> Mul(., Mul(xs, ws)) [-> Add(b)]                    => Int8DynamicLinear(x, W^T, ws, b)
bool lower_dynamic(ir::Graph& g, ir::Node* dql, std::vector<std::pair<ir::Value*, std::string>>& renames) {
  ir::Value *xq = dql->output(0), *xs = dql->output(1), *xz = dql->output(2);
  if (!xq || !xs || !xz || xq->users.size() != 1 || xz->users.size() != 1 || xs->users.size() != 1) return false;
  ir::Node* mm = xq->users[0];
  if (mm->op_type != "MatMulInteger" || mm->input(0) != xq || mm->input(2) != xz) return false;
  return lower_dynamic_tail(g, mm, dql->input(0), xs, false, dql, renames);
}

// Per token (quantize's --per-token):
//   s = Div(Max(ReduceMax(Abs(x), axes=[-1], keepdims=1), eps), 127)
//   MatMulInteger(Cast<int8>(Round(Div(x, s))), W int8) -> Cast(float) -> Mul(s) -> Mul(ws) [-> Add(b)]
//                                                         => Int8DynamicLinear(x, W^T, ws, b), per_token: 1
// The kernel computes s itself, so the pattern must compute exactly that s.
bool lower_per_token(ir::Graph& g, ir::Node* mm, std::vector<std::pair<ir::Value*, std::string>>& renames) {
  if (mm->inputs().size() > 2 && mm->input(2)) return false;  // no activation zero point
  ir::Value* codes = mm->input(0);
  ir::Node* cast = codes->producer;
  if (!cast || cast->op_type != "Cast" || cast->attrs.get_int("to", 0) != 3 || codes->users.size() != 1 ||
      g.is_graph_output(codes))
    return false;
  ir::Node* round = cast->input(0)->producer;
  if (!round || round->op_type != "Round" || round->output(0)->users.size() != 1) return false;
  ir::Node* ratio = round->input(0)->producer;
  if (!ratio || ratio->op_type != "Div" || ratio->output(0)->users.size() != 1) return false;
  ir::Value *x = ratio->input(0), *xs = ratio->input(1);
  ir::Node* s = xs->producer;
  if (!s || s->op_type != "Div" || scalar_value(g, s->input(1)) != 127.0 || xs->users.size() != 2 ||
      g.is_graph_output(xs))
    return false;
  ir::Node* floor = s->input(0)->producer;
  if (!floor || floor->op_type != "Max" || floor->inputs().size() != 2) return false;
  ir::Value* peak = nullptr;
  for (int i = 0; i < 2; ++i)
    if (scalar_value(g, floor->input(1 - i)) == static_cast<double>(1e-12f)) peak = floor->input(i);
  ir::Node* reduce = peak ? peak->producer : nullptr;
  if (!reduce || reduce->op_type != "ReduceMax" || reduce->attrs.get_int("keepdims", 1) != 1) return false;
  std::vector<int64_t> axes = reduce->attrs.get_ints("axes");
  if (reduce->inputs().size() > 1 && reduce->input(1)) {
    const at::Tensor* t = constant(g, reduce->input(1));
    if (!t) return false;
    axes.assign(t->data_ptr<int64_t>(), t->data_ptr<int64_t>() + t->numel());
  }
  if (!x->type.has_shape || x->type.rank() < 2 || axes.size() != 1 ||
      (axes[0] != -1 && axes[0] != x->type.rank() - 1))
    return false;
  ir::Node* mag = reduce->input(0)->producer;
  if (!mag || mag->op_type != "Abs" || mag->input(0) != x) return false;
  return lower_dynamic_tail(g, mm, x, xs, true, mag, renames);
}

// DQ(q) -> MaxPool / Flatten -> QuantizeLinear with q's own parameters: the op runs on
// the int8 values (max and reshape commute with the monotonic dequantization).
bool lower_move(ir::Graph& g, ir::Node* n) {
  ir::Value* q = int8_source(g, n->input(0));
  if (!q || n->outputs().size() != 1 || g.is_graph_output(n->output(0)) || n->output(0)->users.size() != 1) return false;
  ir::Node* quant = n->output(0)->users[0];
  if (quant->op_type != "Int8Quantize" || g.is_graph_output(quant->output(0))) return false;
  auto [scale, zp] = qparams_of(*q->producer);
  if (!same_scalar(g, quant->input(1), scale) || !same_scalar(g, quant->input(2), zp)) return false;
  ir::Attributes a = n->attrs;
  if (n->op_type == "MaxPool") {
    if (!n->input(0)->type.has_shape || n->input(0)->type.rank() != 4) return false;
    if (a.get_string("auto_pad", "NOTSET") != "NOTSET" || a.get_int("storage_order", 0) != 0) return false;
    ops::Window w = ops::read_window(a, {});
    if (w.rank() != 2 || !w.symmetric()) return false;
    a.set("pads", std::vector<int64_t>{w.pads_begin[0], w.pads_begin[1], w.pads_end[0], w.pads_end[1]});
    a.set("strides", w.strides);
    a.set("dilations", w.dilations);
  }
  ir::Value* out = quant->output(0);
  ir::Node* k = g.insert_node_before(n, "Int8" + n->op_type, {q}, {g.unique_name(out->name + ".int8")}, a,
                                     g.unique_name(n->name + ".int8"));
  k->domain = kDomain;
  k->output(0)->type = out->type;
  g.replace_all_uses(out, k->output(0));
  return true;
}

// DequantizeLinear nodes reading only constants (weights left to float layers) become
// float constants.
bool fold_weight_dequantize(ir::Graph& g) {
  std::vector<ir::Node*> nodes;
  for (const auto& n : g.nodes())
    if (n->op_type == "DequantizeLinear" && n->domain.empty() && constant(g, n->input(0)) &&
        constant(g, n->input(1)) && (!n->input(2) || constant(g, n->input(2))))
      nodes.push_back(n.get());
  for (ir::Node* n : nodes) {
    at::Tensor z = n->input(2) ? *constant(g, n->input(2)) : at::Tensor();
    at::Tensor v = ops::dequantize_linear(*constant(g, n->input(0)), *constant(g, n->input(1)), z,
                                          n->attrs.get_int("axis", 1));
    ir::Value* out = n->output(0);
    if (g.is_graph_output(out)) continue;
    ir::Value* c = g.add_initializer(g.unique_name(out->name + ".folded"), v, ir::InitKind::Constant);
    g.replace_all_uses(out, c);
    g.remove_node(n);
  }
  return !nodes.empty();
}

}  // namespace

bool lower_int8(ir::Graph& graph) {
  bool changed = false;
  if (ops::int8_engine_available()) {
    std::vector<ir::Node*> dynamic;
    for (const auto& node : graph.nodes())
      if (node->op_type == "DynamicQuantizeLinear" && node->domain.empty()) dynamic.push_back(node.get());
    std::vector<std::pair<ir::Value*, std::string>> renames;
    for (ir::Node* n : dynamic) changed |= lower_dynamic(graph, n, renames);
    std::vector<ir::Node*> integer;
    for (const auto& node : graph.nodes())
      if (node->op_type == "MatMulInteger" && node->domain.empty() && node->input(0)->producer &&
          node->input(0)->producer->op_type == "Cast")
        integer.push_back(node.get());
    for (ir::Node* n : integer) changed |= lower_per_token(graph, n, renames);
    if (!renames.empty()) {
      eliminate_dead_code(graph);  // the old end values go; their names are free again
      for (auto& [v, name] : renames) graph.rename_value(v, name);
    }
    // Activation quantizers first: their outputs are the int8 values the layers consume.
    bool quantizers = false;
    for (const auto& node : graph.nodes()) {
      ir::Node& n = *node;
      if (n.op_type != "QuantizeLinear" || !n.domain.empty() || graph.is_initializer(n.input(0))) continue;
      if (n.input(0)->type.dtype != at::kFloat || !scalar_constant(graph, n.input(1)) || !n.input(2) ||
          !scalar_constant(graph, n.input(2)) || constant(graph, n.input(2))->scalar_type() != at::kByte ||
          constant(graph, n.input(1))->item<double>() <= 0)
        continue;
      n.op_type = "Int8Quantize";
      n.domain = kDomain;
      n.attrs = {};
      changed = quantizers = true;
    }
    if (quantizers) {
      std::vector<ir::Node*> order;
      for (const auto& n : graph.nodes()) order.push_back(n.get());
      for (ir::Node* n : order) {
        if (!n->domain.empty()) continue;
        if (n->op_type == "Conv") lower_conv(graph, n);
        else if (n->op_type == "Gemm" || n->op_type == "MatMul") lower_linear(graph, n);
        else if (n->op_type == "Add") lower_add(graph, n);
        else if (n->op_type == "MaxPool" || n->op_type == "Flatten") lower_move(graph, n);
      }
      // Remaining dequantizations of int8 values feed float ops.
      for (const auto& node : graph.nodes())
        if (node->op_type == "DequantizeLinear" && node->domain.empty() && int8_source(graph, node->output(0))) {
          node->op_type = "Int8Dequantize";
          node->domain = kDomain;
          node->attrs = {};
        }
      eliminate_dead_code(graph);
    }
  }
  if (fold_weight_dequantize(graph)) {
    eliminate_dead_code(graph);
    changed = true;
  }
  return changed;
}

}  // namespace shrink::passes
