// The graph IR every compression method works on: nodes in topological order,
// named values, and initializers held as tensors (parameters, buffers, constants).
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "shrink/ir/attribute.h"
#include "shrink/ir/tensor_type.h"

namespace shrink::ir {

class Node;

struct Value {
  std::string name;
  TensorType type;
  Node* producer = nullptr;  // null for graph inputs and initializers
  std::vector<Node*> users;  // one entry per use (a node using it twice appears twice)
};

// Parameter: trained (requires grad). Buffer: state updated by the forward in training
// (BatchNorm running statistics). Constant: fixed data (shapes, indices, fixed tensors).
enum class InitKind { Parameter, Buffer, Constant };

struct Initializer {
  at::Tensor tensor;
  InitKind kind = InitKind::Constant;
};

class Node {
 public:
  std::string name;
  std::string op_type;
  std::string domain;  // "" is the default ONNX domain
  Attributes attrs;

  const std::vector<Value*>& inputs() const { return inputs_; }
  const std::vector<Value*>& outputs() const { return outputs_; }
  // The i-th input, or nullptr when it is absent (optional input left out).
  Value* input(size_t i) const { return i < inputs_.size() ? inputs_[i] : nullptr; }
  Value* output(size_t i) const { return i < outputs_.size() ? outputs_[i] : nullptr; }
  std::string describe() const;  // "node 'conv1' (Conv)"

 private:
  friend class Graph;
  std::vector<Value*> inputs_;
  std::vector<Value*> outputs_;
};

class Graph {
 public:
  Graph() = default;
  Graph(Graph&&) = default;
  Graph& operator=(Graph&&) = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;
  Graph clone() const;  // deep copy; initializer tensors are cloned too

  std::string name = "graph";
  int64_t opset = 17;
  std::map<std::string, std::string> metadata;

  // --- construction ---
  Value* add_input(const std::string& name, TensorType type);
  Value* add_initializer(const std::string& name, at::Tensor tensor, InitKind kind);
  void add_output(Value* value);
  // Appends a node; nullptr inputs stand for absent optional inputs.
  Node* add_node(const std::string& op_type, const std::vector<Value*>& inputs,
                 const std::vector<std::string>& output_names, Attributes attrs = {},
                 const std::string& node_name = "");
  // Inserts a node right after (or before) anchor in the node order.
  Node* insert_node_after(const Node* anchor, const std::string& op_type,
                          const std::vector<Value*>& inputs,
                          const std::vector<std::string>& output_names, Attributes attrs = {},
                          const std::string& node_name = "");
  Node* insert_node_before(const Node* anchor, const std::string& op_type,
                           const std::vector<Value*>& inputs,
                           const std::vector<std::string>& output_names, Attributes attrs = {},
                           const std::string& node_name = "");

  // --- lookup ---
  Value* find_value(const std::string& name) const;  // nullptr if absent
  Value* value(const std::string& name) const;       // error if absent
  const std::vector<std::unique_ptr<Node>>& nodes() const { return nodes_; }
  Node* find_node(const std::string& name) const;
  const std::vector<Value*>& inputs() const { return inputs_; }
  const std::vector<Value*>& outputs() const { return outputs_; }
  bool is_initializer(const Value* v) const { return v && initializers_.count(v->name) > 0; }
  bool is_graph_output(const Value* v) const;
  const Initializer* initializer(const std::string& name) const;
  Initializer* initializer(const std::string& name);
  const std::map<std::string, Initializer>& initializers() const { return initializers_; }
  std::vector<std::string> value_names() const;

  // --- surgery shared by every pass ---
  void set_input(Node* node, size_t index, Value* value);
  void set_output_value(size_t index, Value* value);  // graph output index -> value
  void remove_output(size_t index);                     // the value stays (drop dead nodes after)
  // Every use of `from` (node inputs and graph outputs) now reads `to`.
  void replace_all_uses(Value* from, Value* to);
  // Removes a node whose outputs are no longer used (the outputs are deleted too).
  void remove_node(Node* node);
  // Replaces a node by a new one of another op type that keeps its outputs.
  Node* replace_node(Node* node, const std::string& op_type, const std::vector<Value*>& inputs,
                     Attributes attrs);
  void remove_initializer(const std::string& name);  // must be unused
  // Drops the node's trailing outputs that nothing uses (optional outputs), keeping at least `keep`.
  void drop_unused_trailing_outputs(Node* node, size_t keep = 0);
  void set_initializer_tensor(const std::string& name, at::Tensor tensor);
  // Keeps only `indices` along `axis` of an initializer (channel removal).
  void slice_initializer(const std::string& name, int64_t axis, const std::vector<int64_t>& indices);
  void remove_unused_values();  // drops initializers and values nothing refers to
  void rename_value(Value* value, const std::string& new_name);
  std::string unique_name(const std::string& prefix) const;
  void topological_sort();  // stable; error on a cycle

 private:
  Value* new_value(const std::string& name);
  std::unique_ptr<Node> make_node(const std::string& op_type, const std::vector<Value*>& inputs,
                                  const std::vector<std::string>& output_names, Attributes attrs,
                                  const std::string& node_name);
  Node* insert_at(size_t position, std::unique_ptr<Node> node);
  size_t position_of(const Node* node) const;

  std::unordered_map<std::string, std::unique_ptr<Value>> values_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<Value*> inputs_;
  std::vector<Value*> outputs_;
  std::map<std::string, Initializer> initializers_;
};

}  // namespace shrink::ir
