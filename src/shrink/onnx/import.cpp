#include "shrink/onnx/import.h"

#include <ATen/ATen.h>
#include <onnx/onnx_pb.h>

#include <set>

#include "shrink/core/atomic_file.h"
#include "shrink/core/error.h"
#include "shrink/core/parse.h"
#include "shrink/core/limits.h"
#include "shrink/onnx/encode.h"
#include "shrink/onnx/external_data.h"
#include "shrink/onnx/tensor_proto.h"
#include "shrink/ops/registry.h"
#include "shrink/ops/shape_inference.h"
#include "shrink/passes/fold_constants.h"
#include "shrink/passes/inference_passes.h"

namespace shrink::onnx_io {
namespace {

ir::TensorType type_from_value_info(const onnx::ValueInfoProto& info) {
  SHRINK_CHECK(info.type().has_tensor_type(), "value '", info.name(),
               "' is not a tensor (sequences, maps and optionals are not supported)");
  const auto& tt = info.type().tensor_type();
  ir::TensorType t;
  try {
    t.dtype = ir::scalar_type_from_onnx(tt.elem_type());
  } catch (const Error& e) {
    fail("value '", info.name(), "': ", e.what());
  }
  if (!tt.has_shape()) return t;
  t.has_shape = true;
  for (const auto& d : tt.shape().dim()) {
    t.dims.push_back(d.has_dim_value() ? d.dim_value() : ir::kDynamic);
    t.dim_names.push_back(d.has_dim_param() ? d.dim_param() : "");
  }
  bool any_name = false;
  for (const auto& n : t.dim_names) any_name |= !n.empty();
  if (!any_name) t.dim_names.clear();
  return t;
}

ir::Attribute convert_attribute(const onnx::AttributeProto& a, const std::string& where) {
  using A = onnx::AttributeProto;
  A::AttributeType type = a.type();
  if (type == A::UNDEFINED) {  // very old files leave the type out
    if (a.has_f()) type = A::FLOAT;
    else if (a.has_i()) type = A::INT;
    else if (a.has_s()) type = A::STRING;
    else if (a.has_t()) type = A::TENSOR;
    else if (a.floats_size()) type = A::FLOATS;
    else if (a.ints_size()) type = A::INTS;
    else if (a.strings_size()) type = A::STRINGS;
  }
  switch (type) {
    case A::FLOAT: return a.f();
    case A::INT: return static_cast<int64_t>(a.i());
    case A::STRING: return a.s();
    case A::TENSOR: return tensor_from_proto(a.t(), where);
    case A::SPARSE_TENSOR: return tensor_from_sparse_proto(a.sparse_tensor(), where);
    case A::FLOATS: return std::vector<float>(a.floats().begin(), a.floats().end());
    case A::INTS: return std::vector<int64_t>(a.ints().begin(), a.ints().end());
    case A::STRINGS: return std::vector<std::string>(a.strings().begin(), a.strings().end());
    default: fail(where, ": attribute type ", static_cast<int>(type), " (graphs, type protos) is not supported");
  }
}

class Importer {
 private:
  // shrink's own metadata (the input normalisation the model was trained with) is
  // checked here, at the boundary, so a bad value names the file.
  void check_normalization_metadata() const {
    auto mean = g_.metadata.find("shrink.input_mean"), std = g_.metadata.find("shrink.input_std");
    if (mean == g_.metadata.end() && std == g_.metadata.end()) return;
    SHRINK_CHECK(mean != g_.metadata.end() && std != g_.metadata.end(), label_,
                 ": metadata has only one of shrink.input_mean and shrink.input_std");
    auto m = parse_real_list(mean->second, label_ + ": metadata 'shrink.input_mean'");
    auto s = parse_real_list(std->second, label_ + ": metadata 'shrink.input_std'", 1e-12);
    SHRINK_CHECK(m.size() == s.size() && m.size() <= 4096, label_, ": metadata shrink.input_mean has ", m.size(),
                 " values and shrink.input_std ", s.size(), " (expected one per channel for both)");
  }

 public:
  // `owned`: the same model when the importer may release each initializer's bytes once
  // converted (a file's model, read for this import only): the peak then holds the
  // weights once, not twice (ViT-H/14: 2.5 GB, not 5).
  Importer(const onnx::ModelProto& model, std::string label, onnx::ModelProto* owned)
      : model_(model), owned_(owned), label_(std::move(label)) {}

  ir::Graph run() {
    read_opset();
    const onnx::GraphProto& gp = model_.graph();
    g_.name = gp.name().empty() ? "graph" : gp.name();
    g_.opset = opset_;
    for (const auto& p : model_.metadata_props()) g_.metadata[p.key()] = p.value();
    check_normalization_metadata();
    read_initializers(gp);
    for (const auto& in : gp.input())
      if (!g_.find_value(in.name())) g_.add_input(in.name(), type_from_value_info(in));
    for (const auto& vi : gp.value_info()) declared_[vi.name()] = type_from_value_info(vi);
    for (const auto& out : gp.output()) declared_[out.name()] = type_from_value_info(out);
    for (int i = 0; i < gp.node_size(); ++i) add_node(gp.node(i), i);
    for (const auto& out : gp.output()) {
      ir::Value* v = g_.find_value(out.name());
      SHRINK_CHECK(v, "graph output '", out.name(), "' is not produced by any node, initializer or input");
      g_.add_output(v);
    }
    decode_streams();
    upgrade_old_forms();
    own_aliased_initializers();
    classify_initializers();
    ops::infer_shapes(g_, &declared_);
    // 4-bit weights stay packed (passes/fuse_int4.cpp): the runtime reads the codes.
    const std::set<const ir::Node*> packed = passes::int4_unpack_nodes(g_);
    passes::fold_constants(g_, int64_t{1} << 22, &declared_, &packed);
    classify_initializers();  // folded constants may now feed weight slots
    g_.remove_unused_values();
    ops::verify_graph(g_);
    return std::move(g_);
  }

 private:
  void read_opset() {
    bool found = false;
    for (const auto& op : model_.opset_import()) {
      if (op.domain().empty() || op.domain() == "ai.onnx") {
        opset_ = op.version();
        found = true;
      }
    }
    if (!found && model_.opset_import_size() == 0) {
      opset_ = 1;  // IR version 2 files carry no opset: the oldest one
      found = true;
    }
    SHRINK_CHECK(found, "model imports no opset of the default ONNX domain");
    SHRINK_CHECK(opset_ >= kMinOpset && opset_ <= kMaxOpset, "opset ", opset_,
                 " is not supported (supported: ", kMinOpset, " to ", kMaxOpset, ")");
  }

  void read_initializers(const onnx::GraphProto& gp) {
    for (const auto& t : gp.initializer())
      if (is_stream_mark(t.doc_string())) streams_.insert(t.name());
    for (int i = 0; i < gp.initializer_size(); ++i) {
      const onnx::TensorProto& t = gp.initializer(i);
      g_.add_initializer(t.name(), tensor_from_proto(t, msg("initializer '", t.name(), "'")),
                         ir::InitKind::Constant);
      if (owned_ && &owned_->graph() == &gp) {
        onnx::TensorProto* own = owned_->mutable_graph()->mutable_initializer(i);
        std::string().swap(*own->mutable_raw_data());
        own->clear_raw_data();
      }
    }
    for (const auto& s : gp.sparse_initializer()) {
      std::string name = s.values().name();
      g_.add_initializer(name, tensor_from_sparse_proto(s, msg("sparse initializer '", name, "'")),
                         ir::InitKind::Constant);
    }
  }

  void add_node(const onnx::NodeProto& np, int index) {
    std::string name = np.name().empty() ? g_.unique_name(msg(np.op_type(), "_", index)) : np.name();
    std::string where = msg("node '", name, "' (", np.op_type(), ")");
    SHRINK_CHECK(np.domain().empty() || np.domain() == "ai.onnx", where, ": domain '", np.domain(),
                 "' is not supported (only the default ONNX domain)");
    const ops::OpDef* def = ops::OpRegistry::instance().find(np.op_type());
    SHRINK_CHECK(def, where, ": operator '", np.op_type(), "' is not supported");
    ir::Attributes attrs;
    for (const auto& a : np.attribute())
      attrs.set(a.name(), convert_attribute(a, msg(where, ": attribute '", a.name(), "'")));
    if (np.op_type() == "Constant") {  // constants become initializers right away
      SHRINK_CHECK(np.output_size() == 1, where, ": must have one output");
      ir::Node probe;
      probe.attrs = attrs;
      at::Tensor value = def->make_kernel(probe)(ops::KernelContext{}, {})[0];
      g_.add_initializer(np.output(0), value.contiguous(), ir::InitKind::Constant);
      return;
    }
    std::vector<ir::Value*> inputs;
    for (const std::string& in : np.input()) {
      if (in.empty()) {
        inputs.push_back(nullptr);
        continue;
      }
      ir::Value* v = g_.find_value(in);
      SHRINK_CHECK(v, where, ": input '", in,
                   "' is not an initializer, a graph input or the output of an earlier node");
      inputs.push_back(v);
    }
    std::vector<std::string> outputs(np.output().begin(), np.output().end());
    for (const std::string& out : outputs)
      SHRINK_CHECK(out.empty() || !g_.find_value(out), where, ": output '", out,
                   "' is already defined");
    g_.add_node(np.op_type(), inputs, outputs, attrs, name);
  }

  // --- older operator forms, rewritten to their opset 13+ shape ---
  ir::Value* constant_input(ir::Node* node, const std::string& suffix, at::Tensor t) {
    return g_.add_initializer(g_.unique_name(node->name + "_" + suffix), t, ir::InitKind::Constant);
  }

  void attr_to_input(ir::Node* node, const std::string& attr, size_t index, at::ScalarType type) {
    if (!node->attrs.has(attr)) return;
    at::Tensor t = type == at::kLong ? at::tensor(node->attrs.get_ints(attr), at::kLong)
                                     : at::tensor(node->attrs.get_floats(attr), type);
    node->attrs.erase(attr);
    while (node->inputs().size() < index) g_.set_input(node, node->inputs().size(), nullptr);
    g_.set_input(node, index, constant_input(node, attr, t));
  }

  void scalar_attr_to_input(ir::Node* node, const std::string& attr, size_t index, at::ScalarType type) {
    if (!node->attrs.has(attr)) return;
    at::Tensor t = at::scalar_tensor(node->attrs.get_float(attr, 0), at::kDouble).to(type);
    node->attrs.erase(attr);
    while (node->inputs().size() < index) g_.set_input(node, node->inputs().size(), nullptr);
    g_.set_input(node, index, constant_input(node, attr, t));
  }

  at::ScalarType input_dtype(ir::Node* node) {
    ir::Value* x = node->input(0);
    return x ? x->type.dtype : at::kFloat;
  }

  void upgrade_old_forms() {
    std::vector<ir::Node*> nodes;
    for (const auto& n : g_.nodes()) nodes.push_back(n.get());
    for (ir::Node* node : nodes) {
      const std::string& op = node->op_type;
      // Every rewrite below reads the first input and output: a node without them is
      // left for shape inference to report (its arity check names the node).
      if (!node->input(0) || !node->output(0)) continue;
      if (opset_ < 7) upgrade_legacy(node);
      if ((op == "Squeeze" || op == "Unsqueeze") && opset_ < 13) attr_to_input(node, "axes", 1, at::kLong);
      if (op == "Split" && opset_ < 13) attr_to_input(node, "split", 1, at::kLong);
      if (op == "ReduceSum" && opset_ < 13) attr_to_input(node, "axes", 1, at::kLong);
      if (op == "Slice" && opset_ < 10) {
        attr_to_input(node, "starts", 1, at::kLong);
        attr_to_input(node, "ends", 2, at::kLong);
        attr_to_input(node, "axes", 3, at::kLong);
      }
      if (op == "Pad" && opset_ < 11) {
        attr_to_input(node, "pads", 1, at::kLong);
        scalar_attr_to_input(node, "value", 2, input_dtype(node));
      }
      if (op == "Clip" && opset_ < 11) {
        scalar_attr_to_input(node, "min", 1, input_dtype(node));
        scalar_attr_to_input(node, "max", 2, input_dtype(node));
      }
      if (op == "Dropout" && opset_ < 12) scalar_attr_to_input(node, "ratio", 1, at::kFloat);
      if (op == "BatchNormalization" && opset_ < 14) {
        SHRINK_CHECK(node->attrs.get_int("spatial", 1) == 1, node->describe(),
                     ": spatial=0 (per-activation) BatchNormalization is not supported");
        node->attrs.erase("spatial");
        node->attrs.erase("is_test");
        if (node->outputs().size() > 1) node->attrs.set("training_mode", int64_t{1});
        // saved_mean / saved_var (outputs 3, 4) left opset 14; drop them when unused.
        g_.drop_unused_trailing_outputs(node, 3);
      }
      if ((op == "Softmax" || op == "LogSoftmax" || op == "Hardmax") && opset_ < 13)
        upgrade_softmax(node);
    }
  }

  // Opsets 1 to 6: legacy broadcasting (broadcast=1 with an axis to align B at),
  // consumed_inputs, is_test, a per-channel PRelu slope, Reshape's shape attribute,
  // Cast's string target, Pad's "paddings", Concat's default axis.
  void upgrade_legacy(ir::Node* node) {
    const std::string& op = node->op_type;
    for (const char* a : {"consumed_inputs", "is_test"}) node->attrs.erase(a);
    if (node->attrs.has("broadcast")) {
      if (node->attrs.get_int("broadcast") && node->attrs.has("axis") && node->inputs().size() == 2)
        align_legacy_broadcast(node, node->attrs.get_int("axis"));
      node->attrs.erase("broadcast");  // only the binary ops and Gemm had it
      node->attrs.erase("axis");
    }
    if (op == "PRelu") align_legacy_broadcast(node, 1);
    if (op == "Reshape" && node->attrs.has("shape")) attr_to_input(node, "shape", 1, at::kLong);
    if (op == "Concat" && !node->attrs.has("axis")) node->attrs.set("axis", int64_t{1});
    if (op == "Pad" && node->attrs.has("paddings")) {
      node->attrs.set("pads", node->attrs.get_ints("paddings"));
      node->attrs.erase("paddings");
    }
    if (op == "Cast" && node->attrs.has("to")) {
      const ir::Attribute& to = node->attrs.all().at("to");
      if (const auto* name = std::get_if<std::string>(&to)) node->attrs.set("to", onnx_type_code(*name));
    }
  }

  static int64_t onnx_type_code(const std::string& name) {
    static const std::map<std::string, int64_t> codes = {
        {"FLOAT", 1}, {"UINT8", 2}, {"INT8", 3}, {"UINT16", 4}, {"INT16", 5}, {"INT32", 6},
        {"INT64", 7}, {"STRING", 8}, {"BOOL", 9}, {"FLOAT16", 10}, {"DOUBLE", 11}};
    auto it = codes.find(name);
    SHRINK_CHECK(it != codes.end(), "Cast: unknown type '", name, "'");
    return it->second;
  }

  // B of rank k aligned at `axis` of A: append trailing ones so numpy broadcasting agrees.
  void align_legacy_broadcast(ir::Node* node, int64_t axis) {
    ir::Value* a = node->input(0);
    ir::Value* b = node->input(1);
    // A missing input is reported by the arity check later; an axis outside A is left alone.
    if (!a || !b || !a->type.has_shape || !b->type.has_shape) return;
    if (axis < 0 || axis > a->type.rank()) return;
    int64_t trailing = a->type.rank() - axis - b->type.rank();
    if (trailing <= 0 || b->type.numel() == 1) return;
    std::vector<int64_t> dims = b->type.dims;
    dims.insert(dims.end(), trailing, 1);
    g_.set_input(node, 1, reshaped(node, b, dims));
  }

  ir::Value* reshaped(ir::Node* node, ir::Value* v, const std::vector<int64_t>& dims) {
    ir::Value* shape = constant_input(node, "shape", at::tensor(dims, at::kLong));
    ir::Node* r = g_.insert_node_before(node, "Reshape", {v, shape}, {g_.unique_name(v->name + "_aligned")});
    r->output(0)->type = ir::TensorType::of(v->type.dtype, dims);
    return r->output(0);
  }

  // Before opset 13 these coerced the input to 2-D at `axis` (default 1) and worked
  // on the flattened tail. Same as the new form when `axis` is the last axis;
  // otherwise Flatten -> op(axis=-1) -> Reshape back to the input's shape.
  void upgrade_softmax(ir::Node* node) {
    int64_t axis = node->attrs.get_int("axis", 1);
    ir::Value* x = node->input(0);
    if (x->type.has_shape) {
      int64_t rank = x->type.rank();
      if (axis < 0) axis += rank;
      if (axis == rank - 1) {
        node->attrs.set("axis", int64_t{-1});
        return;
      }
    }
    ir::Value* out = node->output(0);
    std::string out_name = out->name;
    ir::Node* flat = g_.insert_node_before(node, "Flatten", {x}, {g_.unique_name(out_name + "_2d_in")});
    flat->attrs.set("axis", axis);
    ir::Node* shape = g_.insert_node_before(node, "Shape", {x}, {g_.unique_name(out_name + "_shape")});
    ir::Attributes attrs;
    attrs.set("axis", int64_t{-1});
    ir::Node* op2d = g_.insert_node_before(node, node->op_type, {flat->output(0)},
                                           {g_.unique_name(out_name + "_2d")}, attrs);
    ir::Node* back = g_.insert_node_before(node, "Reshape", {op2d->output(0), shape->output(0)},
                                           {g_.unique_name(out_name + "_nd")});
    ir::Value* result = back->output(0);
    result->type = out->type;
    g_.replace_all_uses(out, result);
    g_.remove_node(node);
    g_.rename_value(result, out_name);
  }

  // Float initializers feeding weight slots are trained; BatchNorm statistics are
  // buffers; everything else (shapes, indices, fixed tensors) is constant.
  // PyTorch writes one initializer for parameters with equal values and gives each
  // further user an Identity of it. Each becomes a tensor of its own again - as the
  // parameters were - so training and channel pruning treat them apart; the exporter
  // stores equal tensors once.
  void own_aliased_initializers() {
    std::vector<ir::Node*> aliases;
    for (const auto& node : g_.nodes())
      if (node->op_type == "Identity" && node->input(0) && g_.is_initializer(node->input(0)) && node->output(0) &&
          !g_.is_graph_output(node->output(0)))
        aliases.push_back(node.get());
    for (ir::Node* node : aliases) {
      ir::Value* out = node->output(0);
      const std::string name = out->name;
      ir::Value* copy = g_.add_initializer(g_.unique_name(name + "_own"),
                                           g_.initializer(node->input(0)->name)->tensor.clone(),
                                           ir::InitKind::Constant);
      g_.replace_all_uses(out, copy);
      g_.remove_node(node);
      g_.rename_value(copy, name);
    }
  }

  void classify_initializers() {
    const ops::OpRegistry& registry = ops::OpRegistry::instance();
    for (const auto& node : g_.nodes()) {
      const ops::OpDef& def = registry.get(*node);
      auto mark = [&](int slot, ir::InitKind kind) {
        ir::Value* v = node->input(slot);
        ir::Initializer* init = v ? g_.initializer(v->name) : nullptr;
        if (init && init->tensor.is_floating_point() && init->kind == ir::InitKind::Constant) {
          init->kind = kind;
          if (kind == ir::InitKind::Parameter) init->tensor.requires_grad_(true);
        }
      };
      for (int slot : def.param_inputs) {
        mark(slot, ir::InitKind::Parameter);
        // A soft pruning mask: Mul(weight, weight_mask) feeding the weight slot.
        ir::Value* v = node->input(slot);
        ir::Node* mul = v ? v->producer : nullptr;
        if (mul && mul->op_type == "Mul" && mul->inputs().size() == 2 && g_.is_initializer(mul->input(0)) &&
            g_.is_initializer(mul->input(1)) && mul->input(1)->name == mul->input(0)->name + "_mask") {
          for (auto [value, kind] : {std::pair{mul->input(0), ir::InitKind::Parameter}, {mul->input(1), ir::InitKind::Buffer}}) {
            ir::Initializer* init = g_.initializer(value->name);
            if (init->tensor.is_floating_point() && init->kind == ir::InitKind::Constant) {
              init->kind = kind;
              if (kind == ir::InitKind::Parameter) init->tensor.requires_grad_(true);
            }
          }
        }
      }
      for (int slot : def.buffer_inputs) mark(slot, ir::InitKind::Buffer);
      // The bias of a linear layer exported as MatMul + Add.
      if (node->op_type == "Add")
        for (int slot : {0, 1}) {
          ir::Value* other = node->input(1 - slot);
          if (other && other->producer && other->producer->op_type == "MatMul")
            mark(slot, ir::InitKind::Parameter);
        }
    }
  }

  // The initializers shrink's encoder wrote as streams (encode.h) are decoded here,
  // whatever their size (constant folding stops at 4M elements): each node that reads a
  // stream or a decoded value is folded, in order. What cannot be decoded (a
  // hand-edited file) is an error that names the initializer the chain makes.
  void decode_streams() {
    if (streams_.empty()) return;
    std::set<std::string> decoded = streams_;
    std::vector<ir::Node*> order;
    for (const auto& n : g_.nodes()) order.push_back(n.get());
    for (ir::Node* node : order) {
      bool reads = false;
      for (const ir::Value* in : node->inputs()) reads = reads || (in && decoded.count(in->name));
      // The zeros a sparse stream is scattered into come from shape constants alone.
      if (node->op_type == "ConstantOfShape" && !node->outputs().empty() && node->outputs()[0] &&
          node->outputs()[0]->name.rfind('~', 0) == 0)
        reads = true;
      if (!reads) continue;
      std::vector<std::string> outs;
      for (const ir::Value* out : node->outputs())
        if (out) outs.push_back(out->name);
      // The chain's end: decode intermediates are named "~...", the result is not.
      const ir::Value* end = node->outputs().empty() ? nullptr : node->outputs()[0];
      while (end && end->name.rfind('~', 0) == 0 && end->users.size() == 1 && !end->users[0]->outputs().empty())
        end = end->users[0]->outputs()[0];
      const std::string target = end ? end->name : node->describe();
      const std::string what = node->describe();
      bool done = false;
      try {
        done = passes::fold_node(g_, node, max_tensor_bytes() / 8, &declared_);
      } catch (const Error& e) {
        fail("cannot decode encoded initializer '", target, "': ", e.what());
      } catch (const c10::Error& e) {
        fail("cannot decode encoded initializer '", target, "': ", what, ": ", e.what_without_backtrace());
      }
      SHRINK_CHECK(done, "cannot decode encoded initializer '", target, "': ", what,
                   " reads a value that is not constant, or its result has no static shape");
      for (const std::string& out : outs)  // a chain ends at its result, the one name not "~..."
        if (out.rfind('~', 0) == 0) decoded.insert(out);
    }
  }

  const onnx::ModelProto& model_;
  onnx::ModelProto* owned_;
  std::string label_;
  std::set<std::string> streams_;
  int64_t opset_ = 0;
  ir::Graph g_;
  ops::DeclaredTypes declared_;
};

onnx::ModelProto parse_model(const std::string& bytes, const std::string& label) {
  onnx::ModelProto model;
  SHRINK_CHECK(!bytes.empty(), label, ": file is empty, expected an ONNX model");
  SHRINK_CHECK(model.ParseFromString(bytes), label,
               ": not a valid ONNX model (protobuf parse failed: truncated or not ONNX)");
  SHRINK_CHECK(model.has_graph() && model.graph().node_size() + model.graph().output_size() > 0,
               label, ": not a valid ONNX model (no graph)");
  return model;
}

// A model parsed for this import alone: its initializers' bytes are released as they
// become tensors.
ir::Graph import_owned(onnx::ModelProto& model, const std::string& label) {
  try {
    return Importer(model, label, &model).run();
  } catch (const Error& e) {
    fail(label, ": ", e.what());
  }
}

}  // namespace

ir::Graph import_model_bytes(const std::string& bytes, const std::string& label) {
  onnx::ModelProto model = parse_model(bytes, label);
  SHRINK_CHECK(!has_external_data(model), label,
               ": tensor data stored in external files is read only when the model is imported from its path");
  return import_owned(model, label);
}

ir::Graph import_model(const std::string& path) {
  std::string bytes = read_file(path);
  onnx::ModelProto model = parse_model(bytes, path);
  std::string().swap(bytes);
  try {
    load_external_data(model, path);
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  return import_owned(model, path);
}

}  // namespace shrink::onnx_io
