#include "shrink/passes/inference_passes.h"

namespace shrink::passes {
namespace {

bool is_passthrough(const ir::Node& node) {
  if (node.op_type == "Identity") return true;
  if (node.op_type != "Dropout") return false;
  bool mask_used = node.output(1) && !node.output(1)->users.empty();
  bool training_input = node.input(2) != nullptr;  // may switch dropout on
  return !mask_used && !training_input;
}

}  // namespace

bool remove_identity(ir::Graph& graph) {
  std::vector<ir::Node*> candidates;
  for (const auto& n : graph.nodes())
    if (is_passthrough(*n)) candidates.push_back(n.get());
  bool changed = false;
  for (ir::Node* node : candidates) {
    ir::Value* in = node->input(0);
    ir::Value* out = node->output(0);
    if (graph.is_graph_output(out)) {
      // The output's name is the model's interface: move it onto the input value,
      // which only a node-produced value that is not itself an output can take.
      if (!in->producer || graph.is_graph_output(in)) continue;
      std::string name = out->name;
      graph.replace_all_uses(out, in);
      graph.remove_node(node);
      graph.rename_value(in, name);
    } else {
      graph.replace_all_uses(out, in);
      graph.remove_node(node);
    }
    changed = true;
  }
  return changed;
}

}  // namespace shrink::passes
