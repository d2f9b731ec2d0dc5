#include "shrink/report/model_stats.h"

#include <ATen/ATen.h>

#include <unordered_set>

namespace shrink::report {
namespace {

// Product of dims[from:], or 0 when one is unknown.
int64_t product_from(const ir::TensorType& t, size_t from) {
  if (!t.has_shape) return 0;
  int64_t p = 1;
  for (size_t i = from; i < t.dims.size(); ++i) {
    if (t.dims[i] < 0) return 0;
    p *= t.dims[i];
  }
  return p;
}

}  // namespace

int64_t node_macs(const ir::Node& node) {
  const std::string& op = node.op_type;
  const ir::Value* out = node.output(0);
  if (!out || node.inputs().size() < 2 || !node.input(1)) return 0;
  const ir::TensorType& w = node.input(1)->type;
  if ((op == "Int8Linear" || op == "Int8DynamicLinear") && w.is_static()) return product_from(out->type, out->type.rank() > 1 ? 1 : 0) * w.dims[1];
  if (op == "Int4MatMul" && w.is_static() && w.rank() == 3)  // K = groups x 2 x (codes per group / 2)
    return product_from(out->type, out->type.rank() > 1 ? 1 : 0) * w.dims[0] * w.dims[1] * 2;
  if ((op == "Conv" || op == "Int8Conv") && w.is_static()) return product_from(out->type, 1) * product_from(w, 1);
  if (op == "ConvTranspose" && w.is_static())
    return product_from(node.input(0)->type, 1) * product_from(w, 1);
  if ((op == "Gemm" || op == "MatMul" || op == "MatMulInteger") && w.is_static() && w.rank() >= 1) {
    // K: the reduced extent, per output element.
    int64_t k = op == "Gemm" ? (node.attrs.get_int("transB", 0) ? w.dims[1] : w.dims[0])
                             : (w.rank() == 1 ? w.dims[0] : w.dims[w.rank() - 2]);
    return product_from(out->type, out->type.rank() > 1 ? 1 : 0) * k;
  }
  return 0;
}

ModelStats model_stats(const ir::Graph& graph) {
  ModelStats stats;
  std::unordered_set<const ir::Value*> counted;
  for (const auto& node : graph.nodes()) {
    LayerStats layer;
    layer.name = node->name;
    layer.op = node->op_type;
    layer.output = node->output(0) ? node->output(0)->type.to_string() : "";
    for (const ir::Value* in : node->inputs()) {
      const ir::Initializer* init = in ? graph.initializer(in->name) : nullptr;
      if (!init || !counted.insert(in).second) continue;
      const at::Tensor& t = init->tensor;
      layer.bytes += t.numel() * t.element_size();
      // Trained weights: parameters, and integer weights a DequantizeLinear (or an int8
      // kernel) reads (a quantized model's weights; not its scalar scales and zero points).
      bool int_weight = !t.is_floating_point() && t.numel() > 1 && in == node->input(0) &&
                        node->op_type == "DequantizeLinear";
      int_weight |= (node->op_type == "Int8Conv" || node->op_type == "Int8Linear" || node->op_type == "MatMulInteger" ||
                     node->op_type == "Int8DynamicLinear") && in == node->input(1);
      if (node->op_type == "Int4MatMul" && in == node->input(1)) {  // two 4-bit codes a byte, 8 stands for 0
        layer.parameters += 2 * t.numel();
        layer.nonzeros += t.bitwise_and(15).ne(8).sum().item<int64_t>() + t.bitwise_right_shift(4).ne(8).sum().item<int64_t>();
        continue;
      }
      if (init->kind != ir::InitKind::Parameter && !int_weight) continue;
      layer.parameters += t.numel();
      layer.nonzeros += t.ne(0).sum().item<int64_t>();
    }
    layer.macs = node_macs(*node);
    stats.parameters += layer.parameters;
    stats.nonzeros += layer.nonzeros;
    stats.initializer_bytes += layer.bytes;
    stats.macs += layer.macs;
    stats.layers.push_back(layer);
  }
  return stats;
}

}  // namespace shrink::report
