// Builds small ONNX models in tests, so bad and edge-case files can be made on the spot.
#pragma once
#include <ATen/ATen.h>
#include <onnx/onnx_pb.h>

#include <fstream>
#include <string>
#include <vector>

#include "shrink/onnx/tensor_proto.h"

namespace shrink::test_support {

class OnnxBuilder {
 public:
  explicit OnnxBuilder(int64_t opset = 13) {
    model_.set_ir_version(8);
    auto* op = model_.add_opset_import();
    op->set_domain("");
    op->set_version(opset);
    model_.mutable_graph()->set_name("test");
  }
  OnnxBuilder& input(const std::string& name, std::vector<int64_t> dims, int type = 1) {
    value_info(model_.mutable_graph()->add_input(), name, dims, type);
    return *this;
  }
  OnnxBuilder& output(const std::string& name, std::vector<int64_t> dims = {}, int type = 1,
                      bool with_shape = false) {
    auto* vi = model_.mutable_graph()->add_output();
    vi->set_name(name);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(type);
    if (with_shape) set_shape(tt, dims);
    return *this;
  }
  OnnxBuilder& initializer(const std::string& name, const at::Tensor& t) {
    auto* p = model_.mutable_graph()->add_initializer();
    onnx_io::tensor_to_proto(t, *p);
    p->set_name(name);
    return *this;
  }
  onnx::NodeProto& node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out,
                        const std::string& name = "") {
    auto* n = model_.mutable_graph()->add_node();
    n->set_op_type(op);
    n->set_name(name.empty() ? op + std::to_string(model_.graph().node_size()) : name);
    for (auto& i : in) n->add_input(i);
    for (auto& o : out) n->add_output(o);
    return *n;
  }
  static void attr(onnx::NodeProto& n, const std::string& name, std::vector<int64_t> ints) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t i : ints) a->add_ints(i);
  }
  static void attr(onnx::NodeProto& n, const std::string& name, int64_t value) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(value);
  }
  static void attr(onnx::NodeProto& n, const std::string& name, float value) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(value);
  }
  onnx::ModelProto& model() { return model_; }
  std::string bytes() const { return model_.SerializeAsString(); }
  std::string save(const std::string& path) const {
    std::ofstream(path, std::ios::binary) << bytes();
    return path;
  }

 private:
  static void set_shape(onnx::TypeProto_Tensor* tt, const std::vector<int64_t>& dims) {
    auto* shape = tt->mutable_shape();
    for (int64_t d : dims) {
      auto* dim = shape->add_dim();
      if (d < 0) dim->set_dim_param("N");
      else dim->set_dim_value(d);
    }
  }
  static void value_info(onnx::ValueInfoProto* vi, const std::string& name, const std::vector<int64_t>& dims,
                         int type) {
    vi->set_name(name);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(type);
    set_shape(tt, dims);
  }
  onnx::ModelProto model_;
};

// A fresh directory under the system temp dir, removed at scope exit.
struct TempDir {
  std::string path;
  TempDir();
  ~TempDir();
  std::string file(const std::string& name) const { return path + "/" + name; }
};

}  // namespace shrink::test_support
