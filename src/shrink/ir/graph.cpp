#include "shrink/ir/graph.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <unordered_set>

#include "shrink/core/error.h"

namespace shrink::ir {

std::string Node::describe() const { return msg("node '", name, "' (", op_type, ")"); }

Value* Graph::new_value(const std::string& name) {
  SHRINK_CHECK(!name.empty(), "a value needs a name");
  SHRINK_CHECK(!values_.count(name), "value '", name, "' is defined more than once");
  auto v = std::make_unique<Value>();
  v->name = name;
  Value* raw = v.get();
  values_[name] = std::move(v);
  return raw;
}

Value* Graph::add_input(const std::string& name, TensorType type) {
  Value* v = new_value(name);
  v->type = std::move(type);
  inputs_.push_back(v);
  return v;
}

Value* Graph::add_initializer(const std::string& name, at::Tensor tensor, InitKind kind) {
  Value* v = new_value(name);
  v->type = TensorType::of(tensor.scalar_type(), tensor.sizes().vec());
  if (kind == InitKind::Parameter && tensor.is_floating_point()) tensor.requires_grad_(true);
  initializers_[name] = Initializer{std::move(tensor), kind};
  return v;
}

void Graph::add_output(Value* value) {
  SHRINK_CHECK(value, "graph output is null");
  outputs_.push_back(value);
}

std::unique_ptr<Node> Graph::make_node(const std::string& op_type,
                                       const std::vector<Value*>& inputs,
                                       const std::vector<std::string>& output_names,
                                       Attributes attrs, const std::string& node_name) {
  auto node = std::make_unique<Node>();
  node->op_type = op_type;
  node->name = node_name.empty() ? unique_name(op_type) : node_name;
  node->attrs = std::move(attrs);
  node->inputs_ = inputs;
  for (Value* in : inputs)
    if (in) in->users.push_back(node.get());
  for (const std::string& out : output_names) {
    if (out.empty()) {  // absent optional output
      node->outputs_.push_back(nullptr);
      continue;
    }
    Value* v = new_value(out);
    v->producer = node.get();
    node->outputs_.push_back(v);
  }
  while (!node->outputs_.empty() && node->outputs_.back() == nullptr) node->outputs_.pop_back();
  return node;
}

Node* Graph::insert_at(size_t position, std::unique_ptr<Node> node) {
  Node* raw = node.get();
  nodes_.insert(nodes_.begin() + static_cast<std::ptrdiff_t>(position), std::move(node));
  return raw;
}

size_t Graph::position_of(const Node* node) const {
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i].get() == node) return i;
  fail("node is not part of graph '", name, "'");
}

Node* Graph::add_node(const std::string& op_type, const std::vector<Value*>& inputs,
                      const std::vector<std::string>& output_names, Attributes attrs,
                      const std::string& node_name) {
  return insert_at(nodes_.size(),
                   make_node(op_type, inputs, output_names, std::move(attrs), node_name));
}

Node* Graph::insert_node_after(const Node* anchor, const std::string& op_type,
                               const std::vector<Value*>& inputs,
                               const std::vector<std::string>& output_names, Attributes attrs,
                               const std::string& node_name) {
  size_t pos = position_of(anchor) + 1;
  return insert_at(pos, make_node(op_type, inputs, output_names, std::move(attrs), node_name));
}

Node* Graph::insert_node_before(const Node* anchor, const std::string& op_type,
                                const std::vector<Value*>& inputs,
                                const std::vector<std::string>& output_names, Attributes attrs,
                                const std::string& node_name) {
  size_t pos = position_of(anchor);
  return insert_at(pos, make_node(op_type, inputs, output_names, std::move(attrs), node_name));
}

Value* Graph::find_value(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? nullptr : it->second.get();
}

Value* Graph::value(const std::string& name) const {
  Value* v = find_value(name);
  SHRINK_CHECK(v, "graph '", this->name, "' has no value named '", name, "'");
  return v;
}

Node* Graph::find_node(const std::string& node_name) const {
  for (const auto& n : nodes_)
    if (n->name == node_name) return n.get();
  return nullptr;
}

bool Graph::is_graph_output(const Value* v) const {
  return std::find(outputs_.begin(), outputs_.end(), v) != outputs_.end();
}

const Initializer* Graph::initializer(const std::string& n) const {
  auto it = initializers_.find(n);
  return it == initializers_.end() ? nullptr : &it->second;
}

Initializer* Graph::initializer(const std::string& n) {
  auto it = initializers_.find(n);
  return it == initializers_.end() ? nullptr : &it->second;
}

std::vector<std::string> Graph::value_names() const {
  std::vector<std::string> names;
  for (const auto& [n, v] : values_) names.push_back(n);
  std::sort(names.begin(), names.end());
  return names;
}

static void erase_one(std::vector<Node*>& users, Node* node) {
  auto it = std::find(users.begin(), users.end(), node);
  if (it != users.end()) users.erase(it);
}

void Graph::set_input(Node* node, size_t index, Value* value) {
  if (index >= node->inputs_.size()) node->inputs_.resize(index + 1, nullptr);
  if (Value* old = node->inputs_[index]) erase_one(old->users, node);
  node->inputs_[index] = value;
  if (value) value->users.push_back(node);
}

void Graph::remove_output(size_t index) {
  SHRINK_CHECK(index < outputs_.size(), "graph output index ", index, " out of range");
  outputs_.erase(outputs_.begin() + static_cast<std::ptrdiff_t>(index));
}

void Graph::set_output_value(size_t index, Value* value) {
  SHRINK_CHECK(index < outputs_.size(), "graph output index ", index, " out of range");
  outputs_[index] = value;
}

void Graph::replace_all_uses(Value* from, Value* to) {
  if (from == to) return;
  std::vector<Node*> users = from->users;
  for (Node* user : users)
    for (size_t i = 0; i < user->inputs_.size(); ++i)
      if (user->inputs_[i] == from) set_input(user, i, to);
  for (Value*& out : outputs_)
    if (out == from) out = to;
}

void Graph::remove_node(Node* node) {
  for (Value* out : node->outputs_) {
    if (!out) continue;
    SHRINK_CHECK(out->users.empty() && !is_graph_output(out), "cannot remove ",
                 node->describe(), ": its output '", out->name, "' is still used");
  }
  for (Value* in : node->inputs_)
    if (in) erase_one(in->users, node);
  for (Value* out : node->outputs_)
    if (out) values_.erase(out->name);
  nodes_.erase(nodes_.begin() + static_cast<std::ptrdiff_t>(position_of(node)));
}

Node* Graph::replace_node(Node* node, const std::string& op_type,
                          const std::vector<Value*>& inputs, Attributes attrs) {
  for (Value* in : node->inputs_)
    if (in) erase_one(in->users, node);
  node->inputs_ = inputs;
  for (Value* in : inputs)
    if (in) in->users.push_back(node);
  node->op_type = op_type;
  node->attrs = std::move(attrs);
  return node;
}

void Graph::drop_unused_trailing_outputs(Node* node, size_t keep) {
  while (node->outputs_.size() > keep) {
    Value* last = node->outputs_.back();
    if (last && (!last->users.empty() || is_graph_output(last))) break;
    if (last) values_.erase(last->name);
    node->outputs_.pop_back();
  }
}

void Graph::remove_initializer(const std::string& n) {
  Value* v = value(n);
  SHRINK_CHECK(v->users.empty() && !is_graph_output(v), "cannot remove initializer '", n,
               "': it is still used");
  initializers_.erase(n);
  values_.erase(n);
}

void Graph::set_initializer_tensor(const std::string& n, at::Tensor tensor) {
  Initializer* init = initializer(n);
  SHRINK_CHECK(init, "graph '", name, "' has no initializer named '", n, "'");
  if (init->kind == InitKind::Parameter && tensor.is_floating_point() && !tensor.requires_grad())
    tensor = tensor.detach().requires_grad_(true);
  init->tensor = std::move(tensor);
  value(n)->type = TensorType::of(init->tensor.scalar_type(), init->tensor.sizes().vec());
}

void Graph::slice_initializer(const std::string& n, int64_t axis,
                              const std::vector<int64_t>& indices) {
  Initializer* init = initializer(n);
  SHRINK_CHECK(init, "graph '", name, "' has no initializer named '", n, "'");
  at::Tensor idx = at::tensor(indices, at::kLong);
  at::Tensor sliced = init->tensor.detach().index_select(axis, idx).contiguous();
  set_initializer_tensor(n, sliced);
}

void Graph::remove_unused_values() {
  std::vector<std::string> unused;
  for (const auto& [n, init] : initializers_) {
    Value* v = value(n);
    if (v->users.empty() && !is_graph_output(v)) unused.push_back(n);
  }
  for (const auto& n : unused) remove_initializer(n);
}

void Graph::rename_value(Value* v, const std::string& new_name) {
  if (v->name == new_name) return;
  SHRINK_CHECK(!values_.count(new_name), "cannot rename '", v->name, "' to '", new_name,
               "': the name is taken");
  auto node = values_.extract(v->name);
  node.key() = new_name;
  values_.insert(std::move(node));
  auto init = initializers_.extract(v->name);
  if (!init.empty()) {
    init.key() = new_name;
    initializers_.insert(std::move(init));
  }
  v->name = new_name;
}

std::string Graph::unique_name(const std::string& prefix) const {
  if (!values_.count(prefix) && !find_node(prefix)) return prefix;
  for (int i = 1;; ++i) {
    std::string candidate = msg(prefix, "_", i);
    if (!values_.count(candidate) && !find_node(candidate)) return candidate;
  }
}

void Graph::topological_sort() {
  std::unordered_map<const Node*, size_t> pending;
  for (const auto& n : nodes_) {
    size_t count = 0;
    for (Value* in : n->inputs_)
      if (in && in->producer) ++count;
    pending[n.get()] = count;
  }
  std::vector<std::unique_ptr<Node>> ordered;
  std::vector<bool> placed(nodes_.size(), false);
  // Stable Kahn: repeatedly take the earliest node whose producers are all placed.
  while (ordered.size() < nodes_.size()) {
    bool progressed = false;
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (placed[i] || pending[nodes_[i].get()] != 0) continue;
      placed[i] = true;
      progressed = true;
      for (Value* out : nodes_[i]->outputs_)
        if (out)
          for (Node* user : out->users) --pending[user];
      ordered.push_back(std::move(nodes_[i]));
    }
    SHRINK_CHECK(progressed, "graph '", name, "' has a cycle");
  }
  nodes_ = std::move(ordered);
}

Graph Graph::clone() const {
  Graph g;
  g.name = name;
  g.opset = opset;
  g.metadata = metadata;
  for (Value* in : inputs_) g.add_input(in->name, in->type);
  for (const auto& [n, init] : initializers_) {
    at::Tensor t = init.tensor.detach().clone();
    if (init.tensor.requires_grad()) t.requires_grad_(true);  // a trainable copy stays trainable
    g.add_initializer(n, t, init.kind);
  }
  for (const auto& node : nodes_) {
    std::vector<Value*> ins;
    for (Value* in : node->inputs_) ins.push_back(in ? g.value(in->name) : nullptr);
    std::vector<std::string> outs;
    for (Value* out : node->outputs_) outs.push_back(out ? out->name : "");
    Node* copy = g.add_node(node->op_type, ins, outs, node->attrs, node->name);
    copy->domain = node->domain;
    for (size_t i = 0; i < node->outputs_.size(); ++i)
      if (node->outputs_[i]) copy->outputs_[i]->type = node->outputs_[i]->type;
  }
  for (Value* out : outputs_) g.add_output(g.value(out->name));
  return g;
}

}  // namespace shrink::ir
