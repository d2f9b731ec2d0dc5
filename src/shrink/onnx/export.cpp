#include "shrink/onnx/export.h"

#include <ATen/ATen.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <string_view>
#include <tuple>

#include "shrink/core/atomic_file.h"
#include "shrink/core/error.h"
#include "shrink/core/version.h"
#include "shrink/onnx/encode.h"
#include "shrink/onnx/external_data.h"
#include "shrink/onnx/tensor_proto.h"
#include "shrink/ops/shape_inference.h"

namespace shrink::onnx_io {
namespace {

// The first opset in which an op (or a form of it that the IR uses) exists.
int64_t min_opset(const ir::Node& node) {
  const std::string& op = node.op_type;
  if (op == "LayerNormalization") return 17;
  if (op == "CastLike" || (op == "Shape" && (node.attrs.has("start") || node.attrs.has("end")))) return 15;
  if (op == "HardSwish" || (op == "Reshape" && node.attrs.has("allowzero")) ||
      (op == "BatchNormalization" && node.attrs.has("training_mode")))
    return 14;
  return 13;
}

void set_type(onnx::TypeProto* type, const ir::TensorType& t) {
  auto* tt = type->mutable_tensor_type();
  tt->set_elem_type(ir::onnx_type_from_scalar(t.dtype));
  if (!t.has_shape) return;
  auto* shape = tt->mutable_shape();
  for (size_t i = 0; i < t.dims.size(); ++i) {
    auto* d = shape->add_dim();
    // An extent inference cannot name stays blank: in ONNX equal names promise equal
    // sizes, and ONNX Runtime plans its buffers on that promise.
    if (t.dims[i] >= 0) d->set_dim_value(t.dims[i]);
    else if (i < t.dim_names.size() && !t.dim_names[i].empty()) d->set_dim_param(t.dim_names[i]);
  }
}

void set_attribute(onnx::AttributeProto* a, const std::string& name, const ir::Attribute& value) {
  using A = onnx::AttributeProto;
  a->set_name(name);
  if (auto* i = std::get_if<int64_t>(&value)) {
    a->set_type(A::INT);
    a->set_i(*i);
  } else if (auto* f = std::get_if<float>(&value)) {
    a->set_type(A::FLOAT);
    a->set_f(*f);
  } else if (auto* s = std::get_if<std::string>(&value)) {
    a->set_type(A::STRING);
    a->set_s(*s);
  } else if (auto* t = std::get_if<at::Tensor>(&value)) {
    a->set_type(A::TENSOR);
    tensor_to_proto(*t, *a->mutable_t());
  } else if (auto* is = std::get_if<std::vector<int64_t>>(&value)) {
    a->set_type(A::INTS);
    for (int64_t v : *is) a->add_ints(v);
  } else if (auto* fs = std::get_if<std::vector<float>>(&value)) {
    a->set_type(A::FLOATS);
    for (float v : *fs) a->add_floats(v);
  } else if (auto* ss = std::get_if<std::vector<std::string>>(&value)) {
    a->set_type(A::STRINGS);
    for (const auto& v : *ss) a->add_strings(v);
  }
}

// `external`: where large initializers go as they are written (null: kept in the model).
onnx::ModelProto to_proto(const ir::Graph& graph, const ExportOptions& options,
                          ExternalDataWriter* external = nullptr) {
  ops::verify_graph(graph);
  // The types written: symbolic inference, with the extents the graph records (from
  // the file it came from) where inference alone cannot know them.
  ops::DeclaredTypes recorded;
  for (const auto& node : graph.nodes())
    for (const ir::Value* out : node->outputs())
      if (out) {
        ir::TensorType t = out->type;
        t.dim_names.clear();
        recorded[out->name] = std::move(t);
      }
  const ops::ValueTypes types = ops::symbolic_types(graph, &recorded);
  auto type_of = [&](const ir::Value* v) -> const ir::TensorType& {
    auto it = types.find(v);
    return it != types.end() ? it->second : v->type;
  };
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.set_producer_name("shrink");
  model.set_producer_version(shrink::version());
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(export_opset(graph));
  for (const auto& [k, v] : graph.metadata) {
    auto* p = model.add_metadata_props();
    p->set_key(k);
    p->set_value(v);
  }
  onnx::GraphProto* g = model.mutable_graph();
  g->set_name(graph.name);
  for (const ir::Value* in : graph.inputs()) {
    auto* vi = g->add_input();
    vi->set_name(in->name);
    set_type(vi->mutable_type(), type_of(in));
  }
  // Equal tensors are stored once (PyTorch's exporter does the same with Identity
  // nodes); every user reads the first of them.
  std::map<std::string, std::string> alias;
  {
    std::map<std::tuple<int, std::vector<int64_t>, size_t>, std::vector<std::string>> seen;
    for (const auto& [name, init] : graph.initializers()) {
      const ir::Value* v = graph.find_value(name);
      if (!v || graph.is_graph_output(v) || init.tensor.numel() == 0 ||
          std::find(graph.inputs().begin(), graph.inputs().end(), v) != graph.inputs().end())
        continue;
      at::Tensor t = init.tensor.detach().contiguous();
      const char* bytes = static_cast<const char*>(t.data_ptr());
      size_t hash = std::hash<std::string_view>{}(std::string_view(bytes, t.nbytes()));
      auto& same = seen[{static_cast<int>(t.scalar_type()), t.sizes().vec(), hash}];
      for (const std::string& other : same)
        if (at::equal(graph.initializer(other)->tensor.detach(), t)) {
          alias[name] = other;
          break;
        }
      if (!alias.count(name)) same.push_back(name);
    }
  }
  auto stored = [&](const std::string& name) -> const std::string& {
    auto it = alias.find(name);
    return it != alias.end() ? it->second : name;
  };
  // Each initializer in its smallest exact form; decode nodes come first in the node list.
  InitializerWriter writer(
      g, [&](const std::string& n) { return graph.find_value(n) != nullptr; }, options.storage);
  if (external) writer.set_sink([external](onnx::TensorProto& t) { external->store(t); });
  for (const auto& [name, init] : graph.initializers()) {
    if (alias.count(name)) continue;
    const ir::Value* v = graph.find_value(name);
    bool is_input = v && std::find(graph.inputs().begin(), graph.inputs().end(), v) != graph.inputs().end();
    writer.add(name, init.tensor, !is_input && !(v && graph.is_graph_output(v)));
  }
  for (const auto& node : graph.nodes()) {
    SHRINK_CHECK(node->domain.empty() || node->domain == "ai.onnx", node->describe(),
                 ": op of domain '", node->domain, "' has no ONNX form");
    auto* n = g->add_node();
    n->set_name(node->name);
    n->set_op_type(node->op_type);
    for (const ir::Value* in : node->inputs()) n->add_input(in ? stored(in->name) : "");
    for (const ir::Value* out : node->outputs()) n->add_output(out ? out->name : "");
    // Opset 14 wants running mean and variance as outputs of a training-mode BatchNorm.
    if (node->op_type == "BatchNormalization" && node->attrs.get_int("training_mode", 0))
      for (const char* extra : {"_running_mean", "_running_var"})
        if (n->output_size() < 3) n->add_output(graph.unique_name(node->name + extra));
    for (const auto& [name, value] : node->attrs.all()) set_attribute(n->add_attribute(), name, value);
    if (!options.value_info) continue;
    for (const ir::Value* out : node->outputs()) {
      if (!out || graph.is_graph_output(out) || !type_of(out).has_shape) continue;
      auto* vi = g->add_value_info();
      vi->set_name(out->name);
      set_type(vi->mutable_type(), type_of(out));
    }
  }
  for (const ir::Value* out : graph.outputs()) {
    auto* vi = g->add_output();
    vi->set_name(out->name);
    set_type(vi->mutable_type(), type_of(out));
  }
  return model;
}

}  // namespace

Storage parse_storage(const std::string& word) {
  if (word == "compact") return Storage::Compact;
  if (word == "sparse") return Storage::Sparse;
  if (word == "dense") return Storage::Dense;
  throw Error("storage '" + word + "': expected compact, sparse or dense");
}

const char* storage_name(Storage storage) {
  switch (storage) {
    case Storage::Compact: return "compact";
    case Storage::Sparse: return "sparse";
    case Storage::Dense: return "dense";
  }
  return "?";
}

int64_t export_opset(const ir::Graph& graph) {
  int64_t opset = std::max<int64_t>(13, graph.opset);
  for (const auto& node : graph.nodes()) opset = std::max(opset, min_opset(*node));
  return opset;
}

std::string export_model_bytes(const ir::Graph& graph, const ExportOptions& options) {
  onnx::ModelProto model = to_proto(graph, options);
  const int64_t size = static_cast<int64_t>(model.ByteSizeLong());
  SHRINK_CHECK(size <= kMaxProtobufBytes, "the model needs ", size,
               " bytes, over protobuf's 2 GiB limit: export it to a file, with external data");
  return model.SerializeAsString();
}

void export_model(const ir::Graph& graph, const std::string& path, const ExportOptions& options) {
  using External = ExportOptions::ExternalData;
  try {
    const size_t slash = path.rfind('/');
    const std::string location = (slash == std::string::npos ? path : path.substr(slash + 1)) + ".data";
    // Past 2 GiB of tensors (or always, when asked) each large tensor goes to the data
    // file as it is written, so the model proto never holds all of them beside the graph.
    int64_t tensor_bytes = 0;
    for (const auto& [name, init] : graph.initializers()) tensor_bytes += init.tensor.nbytes();
    const bool stream = options.external_data == External::Always ||
                        (options.external_data == External::Auto && tensor_bytes > kMaxProtobufBytes);
    AtomicFileSet files;
    onnx::ModelProto model;
    if (stream) {
      ExternalDataWriter external(files.add(path + ".data"), location);
      model = to_proto(graph, options, &external);
    } else {
      model = to_proto(graph, options);
      const int64_t size = static_cast<int64_t>(model.ByteSizeLong());
      const bool external = options.external_data == External::Auto && size > kMaxProtobufBytes;
      SHRINK_CHECK(external || size <= kMaxProtobufBytes, "the model needs ", size,
                   " bytes, over protobuf's 2 GiB limit (write it with external data)");
      if (!external) {
        write_file_atomically(path, model.SerializeAsString());
        return;
      }
      store_external_data(model, files.add(path + ".data"), location);
    }
    std::string bytes;
    SHRINK_CHECK(model.SerializeToString(&bytes), "protobuf could not serialize the model");
    files.add(path).write(bytes);
    files.commit();
  } catch (const Error& e) {
    const std::string what = e.what();
    if (what.rfind(path, 0) == 0) throw;  // already names the file (a write that failed)
    fail(path, ": not written: ", what);
  }
}

}  // namespace shrink::onnx_io
