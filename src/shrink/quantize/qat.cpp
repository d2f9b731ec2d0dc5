#include "shrink/quantize/qat.h"

#include <ATen/ATen.h>

#include "shrink/core/error.h"
#include "shrink/ops/quant.h"
#include "shrink/ops/shape_inference.h"

namespace shrink::quantize {
namespace {

const ir::Initializer* init_of(const ir::Graph& g, const ir::Value* v) { return v ? g.initializer(v->name) : nullptr; }

bool is_op(const ir::Node* n, const char* op) { return n && n->op_type == op && n->domain.empty(); }

ir::Attributes range_attrs(int64_t qmin, int64_t qmax, int64_t axis) {
  ir::Attributes a;
  a.set("qmin", qmin);
  a.set("qmax", qmax);
  a.set("axis", axis);
  return a;
}

ir::Value* fake_quant(ir::Graph& g, const ir::Node* anchor, ir::Value* x, ir::Value* scale, ir::Value* zp,
                      ir::Attributes attrs, const std::string& name) {
  std::string n = g.unique_name(name + ".fake_quant");
  ir::Node* fq = g.insert_node_before(anchor, "FakeQuant", {x, scale, zp}, {n + ".out"}, std::move(attrs), n);
  fq->domain = "ai.shrink";
  ops::infer_node_types(g, *fq);
  return fq->output(0);
}

// A scale as a trained parameter (LSQ) or a constant.
void set_scale_kind(ir::Graph& g, ir::Value* scale, bool learnable) {
  ir::Initializer* s = g.initializer(scale->name);
  if (!learnable || s->kind == ir::InitKind::Parameter) return;
  s->kind = ir::InitKind::Parameter;
  s->tensor = s->tensor.detach().clone().requires_grad_(true);
}

}  // namespace

int to_fake_quant(ir::Graph& g, bool learnable_scales) {
  int made = 0;
  std::vector<ir::Node*> nodes;
  for (const auto& n : g.nodes()) nodes.push_back(n.get());
  for (ir::Node* dq : nodes) {
    if (!is_op(dq, "DequantizeLinear")) continue;
    const ir::Initializer* q = init_of(g, dq->input(0));
    ir::Value* out = dq->output(0);
    if (q && q->tensor.scalar_type() == at::kChar) {  // an int8 weight: a float parameter behind FakeQuant
      const at::Tensor& s = init_of(g, dq->input(1))->tensor;
      int64_t axis = s.numel() > 1 ? dq->attrs.get_int("axis", 1) : -1;
      at::Tensor w = ops::dequantize_linear(q->tensor, s, dq->input(2) ? init_of(g, dq->input(2))->tensor : at::Tensor(),
                                            std::max<int64_t>(axis, 0));
      std::string base = dq->input(0)->name;
      if (base.size() > 5 && base.compare(base.size() - 5, 5, ".int8") == 0) base.resize(base.size() - 5);
      ir::Value* wv = g.add_initializer(g.unique_name(base), w.contiguous().requires_grad_(true), ir::InitKind::Parameter);
      set_scale_kind(g, dq->input(1), learnable_scales);
      ir::Value* zp = dq->input(2) ? dq->input(2) : g.add_initializer(g.unique_name(base + ".zero_point"),
                                                                       at::zeros_like(s, at::kChar), ir::InitKind::Constant);
      g.replace_all_uses(out, fake_quant(g, dq, wv, dq->input(1), zp, range_attrs(-127, 127, axis), base));
      g.remove_node(dq);
      ++made;
    } else if (q && q->tensor.scalar_type() == at::kInt) {  // an int32 bias: trained in float
      at::Tensor b = ops::dequantize_linear(q->tensor, init_of(g, dq->input(1))->tensor,
                                            dq->input(2) ? init_of(g, dq->input(2))->tensor : at::Tensor(), 0);
      std::string base = dq->input(0)->name;
      if (base.size() > 6 && base.compare(base.size() - 6, 6, ".int32") == 0) base.resize(base.size() - 6);
      ir::Value* bv = g.add_initializer(g.unique_name(base), b.contiguous().requires_grad_(true), ir::InitKind::Parameter);
      g.replace_all_uses(out, bv);
      g.remove_node(dq);
    } else if (!q && is_op(dq->input(0)->producer, "QuantizeLinear") && dq->input(0)->users.size() == 1) {
      ir::Node* qn = dq->input(0)->producer;  // an activation's pair
      ir::Value* zp = qn->input(2);
      SHRINK_CHECK(zp && init_of(g, zp) && init_of(g, qn->input(1)), qn->describe(), ": scale and zero point must be initializers");
      bool u8 = init_of(g, zp)->tensor.scalar_type() == at::kByte;
      set_scale_kind(g, qn->input(1), learnable_scales);
      g.replace_all_uses(out, fake_quant(g, qn, qn->input(0), qn->input(1), zp, range_attrs(u8 ? 0 : -128, u8 ? 255 : 127, -1),
                                 qn->input(0)->name));
      g.remove_node(dq);
      g.remove_node(qn);
      ++made;
    }
  }
  g.remove_unused_values();
  return made;
}

void from_fake_quant(ir::Graph& g) {
  std::vector<ir::Node*> nodes;
  for (const auto& n : g.nodes())
    if (n->op_type == "FakeQuant" && n->domain == "ai.shrink") nodes.push_back(n.get());
  auto freeze = [&](ir::Value* scale) {  // a learned scale becomes a constant again (and stays positive)
    ir::Initializer* s = g.initializer(scale->name);
    s->kind = ir::InitKind::Constant;
    s->tensor = s->tensor.detach().clamp_min(1e-8).contiguous();
  };
  for (ir::Node* fq : nodes) {
    ir::Value *x = fq->input(0), *scale = fq->input(1), *zp = fq->input(2);
    int64_t axis = fq->attrs.get_int("axis", -1);
    freeze(scale);
    ir::Value* out = fq->output(0);
    if (const ir::Initializer* w = init_of(g, x); w && w->kind == ir::InitKind::Parameter) {
      at::Tensor wq = ops::quantize_linear(w->tensor.detach(), init_of(g, scale)->tensor, init_of(g, zp)->tensor, at::kChar,
                                           std::max<int64_t>(axis, 0));
      ir::Value* wq_v = g.add_initializer(g.unique_name(x->name + ".int8"), wq, ir::InitKind::Constant);
      ir::Attributes a;
      if (axis >= 0) a.set("axis", axis);
      std::string n = g.unique_name(x->name + ".dequantize");
      ir::Node* dq = g.insert_node_before(fq, "DequantizeLinear", {wq_v, scale, zp}, {n + ".out"}, a, n);
      ops::infer_node_types(g, *dq);
      g.replace_all_uses(out, dq->output(0));
    } else {
      std::string qn = g.unique_name(x->name + ".quantize"), dn = g.unique_name(x->name + ".dequantize");
      ir::Node* q = g.insert_node_before(fq, "QuantizeLinear", {x, scale, zp}, {qn + ".out"}, {}, qn);
      ir::Node* dq = g.insert_node_before(fq, "DequantizeLinear", {q->output(0), scale, zp}, {dn + ".out"}, {}, dn);
      ops::infer_node_types(g, *q);
      ops::infer_node_types(g, *dq);
      g.replace_all_uses(out, dq->output(0));
    }
    g.remove_node(fq);
  }
  // Biases back to int32 at s_input * s_weight.
  std::vector<ir::Node*> layers;
  for (const auto& node : g.nodes()) layers.push_back(node.get());
  for (ir::Node* layer : layers) {
    ir::Node& n = *layer;
    if (n.op_type != "Conv" && n.op_type != "Gemm" && n.op_type != "ConvTranspose") continue;
    const ir::Initializer* b = init_of(g, n.input(2));
    const ir::Node* xdq = n.input(0)->producer;
    const ir::Node* wdq = n.input(1)->producer;
    if (!b || !is_op(xdq, "DequantizeLinear") || !is_op(wdq, "DequantizeLinear") || init_of(g, xdq->input(0))) continue;
    at::Tensor bs = (init_of(g, xdq->input(1))->tensor.to(at::kDouble) * init_of(g, wdq->input(1))->tensor.to(at::kDouble))
                        .to(at::kFloat)
                        .reshape({-1});
    int64_t count = b->tensor.numel();
    if (bs.numel() == 1 && count > 1) bs = bs.expand({count}).contiguous();
    at::Tensor bq = ops::quantize_linear(b->tensor.detach().reshape({-1}), bs, at::Tensor(), at::kInt, 0);
    std::string base = n.input(2)->name;
    ir::Value* bq_v = g.add_initializer(g.unique_name(base + ".int32"), bq, ir::InitKind::Constant);
    ir::Value* bs_v = g.add_initializer(g.unique_name(base + ".scale"), bs, ir::InitKind::Constant);
    ir::Value* bz = g.add_initializer(g.unique_name(base + ".zero_point"), at::zeros({count}, at::kInt), ir::InitKind::Constant);
    ir::Attributes a;
    a.set("axis", static_cast<int64_t>(0));
    std::string dn = g.unique_name(base + ".dequantize");
    ir::Node* dq = g.insert_node_before(&n, "DequantizeLinear", {bq_v, bs_v, bz}, {dn + ".out"}, a, dn);
    ops::infer_node_types(g, *dq);
    g.set_input(&n, 2, dq->output(0));
  }
  g.remove_unused_values();
}

}  // namespace shrink::quantize
