// ONNX model -> ir::Graph. Opsets 7 to 17 of the default domain. Older operator
// forms are upgraded on the way in (axes, pads, splits, clip bounds moved from
// attributes to inputs as opset 13 has them; Softmax's old 2-D coercion made
// explicit), constant subgraphs are folded, and initializers are sorted into
// parameters, buffers and constants.
#pragma once
#include <string>

#include "shrink/ir/graph.h"

namespace shrink::onnx_io {

// Opsets 1 to 6 (the older files of ONNX's pytorch-converted suite) are read too:
// their legacy forms (broadcast/axis attributes, consumed_inputs, string Cast
// targets, attribute shapes) are rewritten to the modern ones.
constexpr int64_t kMinOpset = 1;
constexpr int64_t kMaxOpset = 17;

// Errors start with the file name and name the node or value at fault.
ir::Graph import_model(const std::string& path);
ir::Graph import_model_bytes(const std::string& bytes, const std::string& label);

}  // namespace shrink::onnx_io
