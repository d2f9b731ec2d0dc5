#include "shrink/ir/verifier.h"

#include <algorithm>
#include <unordered_set>

#include "shrink/core/error.h"

namespace shrink::ir {

void verify_structure(const Graph& graph) {
  std::unordered_set<const Value*> defined;
  for (const Value* in : graph.inputs()) {
    SHRINK_CHECK(!graph.is_initializer(in), "graph input '", in->name, "' is also an initializer");
    SHRINK_CHECK(defined.insert(in).second, "graph input '", in->name, "' is listed twice");
  }
  for (const auto& [name, init] : graph.initializers()) {
    const Value* v = graph.value(name);
    SHRINK_CHECK(init.tensor.defined(), "initializer '", name, "' has no data");
    SHRINK_CHECK(!v->producer, "initializer '", name, "' is also produced by a node");
    defined.insert(v);
  }
  for (const auto& node : graph.nodes()) {
    for (size_t i = 0; i < node->inputs().size(); ++i) {
      const Value* in = node->inputs()[i];
      if (!in) continue;
      SHRINK_CHECK(defined.count(in), node->describe(), ": input '", in->name,
                   "' is not defined before the node (missing initializer or wrong order)");
      SHRINK_CHECK(std::count(in->users.begin(), in->users.end(), node.get()) > 0,
                   node->describe(), ": value '", in->name, "' does not list it as a user");
    }
    for (const Value* out : node->outputs()) {
      if (!out) continue;
      SHRINK_CHECK(out->producer == node.get(), node->describe(), ": output '", out->name,
                   "' names another producer");
      SHRINK_CHECK(defined.insert(out).second, node->describe(), ": output '", out->name,
                   "' is defined more than once");
    }
  }
  for (const Value* out : graph.outputs())
    SHRINK_CHECK(defined.count(out), "graph output '", out->name, "' is never produced");
}

}  // namespace shrink::ir
