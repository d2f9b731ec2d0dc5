#include "shrink/passes/inference_passes.h"

namespace shrink::passes {

bool eliminate_dead_code(ir::Graph& graph) {
  bool changed = false;
  // Reverse order: removing a consumer can make its producers dead in the same sweep.
  std::vector<ir::Node*> order;
  for (const auto& n : graph.nodes()) order.push_back(n.get());
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    ir::Node* node = *it;
    bool used = false;
    for (const ir::Value* out : node->outputs())
      used |= out && (!out->users.empty() || graph.is_graph_output(out));
    if (used) continue;
    graph.remove_node(node);
    changed = true;
  }
  size_t before = graph.initializers().size();
  graph.remove_unused_values();
  return changed || graph.initializers().size() != before;
}

}  // namespace shrink::passes
