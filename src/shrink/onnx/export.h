// ir::Graph -> ONNX model. Opset: the imported one, at least 13 (the forms the IR
// holds), raised where an op or attribute needs a newer one. Written to a temporary
// file and renamed, so an interrupted export never leaves a half-written model.
#pragma once
#include <string>

#include "shrink/ir/graph.h"

namespace onnx {
class ModelProto;
}

namespace shrink::onnx_io {

// How initializers are stored (see encode.h). Compact: each in its smallest exact form,
// dense, sparse or packed streams that standard ops decode (ONNX Runtime folds the
// decode at session creation, which costs it milliseconds on large layers). Sparse:
// dense or sparse only, no decode nodes (ONNX Runtime densifies sparse initializers at
// load, as fast as reading dense ones). Dense: every initializer dense.
enum class Storage { Compact, Sparse, Dense };
// "compact", "sparse", "dense"; anything else is an error naming the accepted words.
Storage parse_storage(const std::string& word);
const char* storage_name(Storage storage);

struct ExportOptions {
  Storage storage = Storage::Compact;
  bool value_info = true;  // shapes of intermediate values
  // Tensor data in a file beside the model (`OUT.data`, ONNX's external data): Auto
  // when the model would exceed protobuf's 2 GiB limit, Always for every initializer
  // of 1 KiB or more, Never (a model over the limit is then an error).
  enum class ExternalData { Auto, Always, Never };
  ExternalData external_data = ExternalData::Auto;
};

// Default options with initializers stored as `storage`.
inline ExportOptions stored_as(Storage storage) {
  ExportOptions eo;
  eo.storage = storage;
  return eo;
}

// The opset the graph will be written with.
int64_t export_opset(const ir::Graph& graph);

// With external data, the model and its `.data` file are written together or not at all.
void export_model(const ir::Graph& graph, const std::string& path, const ExportOptions& options = {});
// The whole model in memory: an error past protobuf's 2 GiB limit.
std::string export_model_bytes(const ir::Graph& graph, const ExportOptions& options = {});

}  // namespace shrink::onnx_io
