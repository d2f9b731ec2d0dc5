// Initializers in their smallest exact form on disk. Besides dense and sparse
// (SparseTensorProto with varint positions), a tensor may be written as packed integer
// streams that standard opset-13 ops decode back to the exact tensor:
//   codebook:         codes into a small table of its distinct values (Gather);
//   relative sparse:  Deep Compression's relative positions (gaps between non-zeros,
//                     with filler entries where a gap overflows its bits) and either
//                     the values themselves or codes into a codebook (CumSum,
//                     ScatterElements into zeros).
// Streams are bit-packed, groups of values in a few uint8 bytes (4 values of 6 bits in 3
// bytes), and unpacked with Cast, Mul, ReduceSum, Div, Mod, Reshape and Slice. ONNX Runtime folds a decode subgraph at session creation,
// so it costs nothing at run time; shrink's import folds it at load (see import.cpp).
// Stream initializers carry a doc_string that marks them: "~c<bits>" codes, "~g<bits>"
// gaps, "~k" a codebook, "~v" raw values ("shrink info" reads them).
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <map>
#include <set>
#include <string>

#include "shrink/onnx/export.h"

namespace onnx {
class GraphProto;
class TensorProto;
}  // namespace onnx

namespace shrink::onnx_io {

// How a stream initializer is marked: true for names shrink's encoder writes.
bool is_stream_mark(const std::string& doc_string);

// How a file stores one tensor (for Deep Compression's table in `shrink info`).
struct StoredTensor {
  std::string name, form;  // form: dense, sparse, codes, relative+codes, relative+values
  std::vector<int64_t> dims;
  int64_t elements = 0, nonzeros = 0;
  int64_t element_bits = 0;    // of the tensor's type
  double bits_per_weight = 0;  // per stored value: code bits, or the type's bits
  double bits_per_index = 0;   // per non-zero: gap bits, sparse positions' bytes * 8
  int64_t bytes = 0;           // its initializers and decode nodes in the file
};
// Every initializer of a serialized model as it is stored, in file order.
std::vector<StoredTensor> stored_tensors(const std::string& model_bytes, const std::string& label);

class InitializerWriter {
 public:
  // `taken(name)` says whether the graph being written already uses a name; `storage`
  // limits the forms (Sparse: dense or sparse, Dense: dense only).
  InitializerWriter(onnx::GraphProto* graph, std::function<bool(const std::string&)> taken, Storage storage);
  // Adds `tensor` as initializer `name` in its smallest form; decode nodes (if any) are
  // appended to the graph's node list, so they must precede the graph's own nodes.
  // `allow_nodes` false (a graph input's default) limits the choice to dense and sparse.
  void add(const std::string& name, const at::Tensor& tensor, bool allow_nodes = true);
  // Called with each initializer as soon as it is in the graph (export moves large ones
  // to the external data file there, so the model never holds every tensor's bytes).
  void set_sink(std::function<void(onnx::TensorProto&)> sink) { sink_ = std::move(sink); }

  struct Candidate;

 private:
  void add_in_smallest_form(const std::string& name, const at::Tensor& tensor, bool allow_nodes);
  std::string fresh();
  std::function<void(onnx::TensorProto&)> sink_;
  onnx::GraphProto* graph_;
  std::function<bool(const std::string&)> taken_;
  Storage storage_;
  int64_t counter_ = 0;
  std::set<std::string> shared_;  // shared constants already written
};

}  // namespace shrink::onnx_io
