// fuse_int4: a MatMul / Gemm whose weight is unpacked from 4-bit codes in the graph, as
// `quantize --mode weight-only --bits 4` writes it (quantize/quantize.cpp),
//   packed uint8 [K/G, G/2, N] -> Cast(int32) -> Mod 16 | Div 16 -> Concat(axis 1)
//     -> Cast(float) -> Sub 8 -> Mul(scale [K/G, 1, N]) -> Reshape [K, N] -> MatMul(x, .)
//        | Gemm(x, ., bias [N]) (no transposes, alpha = beta = 1)
// becomes Int4MatMul(x, packed, scale[, bias]) of the ai.shrink domain (ops/int4.h), which
// reads the packed bytes instead of a float weight. It runs first in the inference pipeline,
// before constant folding would turn the unpacking into a float constant; never exported.
#include "shrink/passes/inference_passes.h"
#include "shrink/passes/match.h"

namespace shrink::passes {
namespace {

bool scalar_is(const ir::Graph& g, const ir::Value* v, double want) {
  const at::Tensor* t = constant(g, v);
  return t && t->numel() == 1 && t->item<double>() == want;
}

// The producer of v if it is a standard `op` whose output only `user` reads.
ir::Node* feeding(const ir::Graph& g, const ir::Value* v, const char* op, const ir::Node* user) {
  ir::Node* p = v ? v->producer : nullptr;
  if (!p || p->op_type != op || !p->domain.empty() || g.is_graph_output(v)) return nullptr;
  for (const ir::Node* u : v->users)
    if (u != user) return nullptr;
  return p;
}

struct Chain {
  ir::Node *widen, *mod, *div, *concat, *to_float, *sub, *mul, *reshape;
  std::vector<ir::Value*> inputs;  // of the fused node
};

bool match(const ir::Graph& g, ir::Node* layer, Chain& c) {
  if (layer->op_type == "Gemm" &&
      (layer->attrs.get_int("transA", 0) || layer->attrs.get_int("transB", 0) || layer->attrs.get_float("alpha", 1) != 1 ||
       layer->attrs.get_float("beta", 1) != 1))
    return false;
  if (layer->inputs().size() < 2 || !layer->input(1)) return false;
  c.reshape = feeding(g, layer->input(1), "Reshape", layer);
  if (!c.reshape) return false;
  c.mul = feeding(g, c.reshape->input(0), "Mul", c.reshape);
  if (!c.mul) return false;
  c.sub = feeding(g, c.mul->input(0), "Sub", c.mul);
  const at::Tensor* scale = constant(g, c.mul->input(1));
  if (!c.sub || !scale || scale->scalar_type() != at::kFloat || !scalar_is(g, c.sub->input(1), 8.0)) return false;
  c.to_float = feeding(g, c.sub->input(0), "Cast", c.sub);
  if (!c.to_float || c.to_float->attrs.get_int("to", 0) != 1) return false;
  c.concat = feeding(g, c.to_float->input(0), "Concat", c.to_float);
  if (!c.concat || c.concat->attrs.get_int("axis", 0) != 1 || c.concat->inputs().size() != 2) return false;
  c.mod = c.concat->input(0)->producer;
  c.div = c.concat->input(1)->producer;
  if (!c.mod || !c.div || c.mod->op_type != "Mod" || c.div->op_type != "Div" || c.mod->attrs.get_int("fmod", 0) != 0 ||
      c.mod->input(0) != c.div->input(0) || !scalar_is(g, c.mod->input(1), 16) || !scalar_is(g, c.div->input(1), 16))
    return false;
  c.widen = c.mod->input(0)->producer;
  if (!c.widen || c.widen->op_type != "Cast" || c.widen->attrs.get_int("to", 0) != 6) return false;
  const at::Tensor* packed = constant(g, c.widen->input(0));
  if (!packed || packed->scalar_type() != at::kByte || packed->dim() != 3) return false;
  const int64_t groups = packed->size(0), half = packed->size(1), n = packed->size(2), k = groups * 2 * half;
  if (scale->dim() != 3 || scale->size(0) != groups || scale->size(1) != 1 || scale->size(2) != n) return false;
  const at::Tensor* shape = constant(g, c.reshape->input(1));
  if (!shape || shape->numel() != 2 || shape->scalar_type() != at::kLong || shape->data_ptr<int64_t>()[0] != k ||
      shape->data_ptr<int64_t>()[1] != n)
    return false;
  ir::Value* x = layer->input(0);
  if (!x->type.has_shape || x->type.rank() < 1 || (layer->op_type == "Gemm" && x->type.rank() != 2)) return false;
  c.inputs = {x, c.widen->input(0), c.mul->input(1)};
  if (layer->op_type == "Gemm" && layer->inputs().size() > 2 && layer->input(2)) {
    const at::Tensor* b = constant(g, layer->input(2));
    if (!b || !b->is_floating_point() || b->numel() != n || b->size(-1) != n) return false;
    c.inputs.push_back(layer->input(2));
  }
  return true;
}

std::vector<std::pair<ir::Node*, Chain>> chains(const ir::Graph& g) {
  std::vector<std::pair<ir::Node*, Chain>> out;
  for (const auto& n : g.nodes()) {
    Chain c;
    if ((n->op_type == "MatMul" || n->op_type == "Gemm") && n->domain.empty() && match(g, n.get(), c))
      out.emplace_back(n.get(), c);
  }
  return out;
}

}  // namespace

bool fuse_int4(ir::Graph& graph) {
  auto found = chains(graph);
  for (auto& [layer, c] : found) {
    ir::Node* fused = graph.replace_node(layer, "Int4MatMul", c.inputs, {});
    fused->domain = "ai.shrink";
    for (ir::Node* dead : {c.reshape, c.mul, c.sub, c.to_float, c.concat}) graph.remove_node(dead);
    for (ir::Node* maybe : {c.mod, c.div, c.widen})
      if (maybe->output(0)->users.empty()) graph.remove_node(maybe);
  }
  return !found.empty();
}

std::set<const ir::Node*> int4_unpack_nodes(const ir::Graph& graph) {
  std::set<const ir::Node*> out;
  for (auto& [layer, c] : chains(graph))
    out.insert({c.widen, c.mod, c.div, c.concat, c.to_float, c.sub, c.mul, c.reshape});
  return out;
}

}  // namespace shrink::passes
