#pragma once
#include "shrink/ir/graph.h"

namespace shrink::ir {

// Structural checks: every value defined exactly once, every node input defined
// before its use (topological order), users lists consistent, outputs defined.
// Throws Error naming the first offending node or value.
void verify_structure(const Graph& graph);

}  // namespace shrink::ir
