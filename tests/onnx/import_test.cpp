// ONNX import: upgrades, folding, sparse initializers, and every kind of bad file.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>

#include "shrink/core/error.h"
#include "shrink/exec/session.h"
#include "shrink/onnx/import.h"
#include "support/onnx_builder.h"

using namespace shrink;
using test_support::OnnxBuilder;
using test_support::TempDir;

namespace {

// The error text of importing `path`, or "" when it imports.
std::string import_error(const std::string& path) {
  try {
    onnx_io::import_model(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

OnnxBuilder relu_model() {
  OnnxBuilder b;
  b.input("x", {-1, 4}).output("y");
  b.node("Relu", {"x"}, {"y"}, "relu");
  return b;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST(Import, ShapeSubgraphIsFoldedIntoAConstant) {
  // x.view(x.size(0) * x.size(1), -1) as PyTorch exports it.
  OnnxBuilder b;
  b.input("x", {2, 3, 4}).output("y");
  b.initializer("zero", at::tensor({int64_t{0}}));
  b.initializer("one", at::tensor({int64_t{1}}));
  b.initializer("minus1", at::tensor({int64_t{-1}}));
  b.node("Shape", {"x"}, {"s"});
  auto& g0 = b.node("Gather", {"s", "zero"}, {"d0"});
  OnnxBuilder::attr(g0, "axis", int64_t{0});
  b.node("Gather", {"s", "one"}, {"d1"});
  b.node("Mul", {"d0", "d1"}, {"rows"});
  auto& cat = b.node("Concat", {"rows", "minus1"}, {"shape"});
  OnnxBuilder::attr(cat, "axis", int64_t{0});
  b.node("Reshape", {"x", "shape"}, {"y"}, "reshape");
  TempDir dir;
  ir::Graph g = onnx_io::import_model(b.save(dir.file("m.onnx")));
  ASSERT_EQ(g.nodes().size(), 1u);
  EXPECT_EQ(g.nodes()[0]->op_type, "Reshape");
  EXPECT_EQ(g.outputs()[0]->type.to_string(), "float32[6,4]");
  at::Tensor x = at::arange(24, at::kFloat).view({2, 3, 4});
  EXPECT_TRUE(at::equal(exec::run_once(g, {x})[0], x.view({6, 4})));
}

TEST(Import, SparseInitializerIsDensified) {
  OnnxBuilder b;
  b.input("x", {2, 3}).output("y");
  auto* sp = b.model().mutable_graph()->add_sparse_initializer();
  sp->add_dims(2);
  sp->add_dims(3);
  onnx_io::tensor_to_proto(at::tensor({5.0f, 7.0f}), *sp->mutable_values());
  sp->mutable_values()->set_name("w");
  onnx_io::tensor_to_proto(at::tensor({int64_t{1}, int64_t{5}}), *sp->mutable_indices());
  b.node("Add", {"x", "w"}, {"y"});
  TempDir dir;
  ir::Graph g = onnx_io::import_model(b.save(dir.file("m.onnx")));
  at::Tensor y = exec::run_once(g, {at::zeros({2, 3})})[0];
  EXPECT_TRUE(at::equal(y, at::tensor({0.f, 5.f, 0.f, 0.f, 0.f, 7.f}).view({2, 3})));
}

TEST(Import, Opset11SqueezeAxesAttributeBecomesInput) {
  OnnxBuilder b(11);
  b.input("x", {1, 3, 1}).output("y");
  auto& sq = b.node("Squeeze", {"x"}, {"y"});
  OnnxBuilder::attr(sq, "axes", std::vector<int64_t>{0});
  TempDir dir;
  ir::Graph g = onnx_io::import_model(b.save(dir.file("m.onnx")));
  EXPECT_EQ(g.nodes()[0]->inputs().size(), 2u);
  EXPECT_EQ(g.outputs()[0]->type.to_string(), "float32[3,1]");
}

TEST(Import, WeightsBecomeParametersAndBatchNormStatsBuffers) {
  OnnxBuilder b;
  b.input("x", {1, 2, 3, 3}).output("y");
  b.initializer("W", at::ones({2, 2, 1, 1}));
  for (const char* n : {"s", "bias", "mean", "var"}) b.initializer(n, at::ones({2}));
  b.initializer("k", at::tensor({2.0f}));
  b.node("Conv", {"x", "W"}, {"c"});
  b.node("BatchNormalization", {"c", "s", "bias", "mean", "var"}, {"bn"});
  b.node("Mul", {"bn", "k"}, {"y"});
  TempDir dir;
  ir::Graph g = onnx_io::import_model(b.save(dir.file("m.onnx")));
  EXPECT_EQ(g.initializer("W")->kind, ir::InitKind::Parameter);
  EXPECT_EQ(g.initializer("s")->kind, ir::InitKind::Parameter);
  EXPECT_EQ(g.initializer("mean")->kind, ir::InitKind::Buffer);
  EXPECT_EQ(g.initializer("k")->kind, ir::InitKind::Constant);
}

TEST(ImportErrors, MissingFile) {
  EXPECT_EQ(import_error("/nonexistent/model.onnx"), "/nonexistent/model.onnx: cannot open file");
}

TEST(ImportErrors, EmptyTruncatedAndNonOnnxFiles) {
  TempDir dir;
  std::ofstream(dir.file("empty.onnx"));
  EXPECT_TRUE(contains(import_error(dir.file("empty.onnx")), "empty.onnx: file is empty"));
  std::ofstream(dir.file("text.onnx")) << "this is not a model";
  EXPECT_TRUE(contains(import_error(dir.file("text.onnx")), "text.onnx: not a valid ONNX model"));
  OnnxBuilder b = relu_model();
  b.initializer("big", at::ones({64, 64}));
  b.node("Add", {"y", "y"}, {"z"});
  std::string bytes = b.bytes();
  std::ofstream(dir.file("cut.onnx"), std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  EXPECT_TRUE(contains(import_error(dir.file("cut.onnx")), "cut.onnx: not a valid ONNX model"))
      << import_error(dir.file("cut.onnx"));
}

TEST(ImportErrors, MissingInitializerNamesNodeAndValue) {
  OnnxBuilder b;
  b.input("x", {2, 3}).output("y");
  b.node("MatMul", {"x", "W"}, {"y"}, "fc");
  TempDir dir;
  std::string err = import_error(b.save(dir.file("m.onnx")));
  EXPECT_TRUE(contains(err, "m.onnx: node 'fc' (MatMul): input 'W' is not an initializer")) << err;
}

TEST(ImportErrors, UnsupportedOperatorAndDomain) {
  OnnxBuilder b;
  b.input("x", {2}).output("y");
  b.node("FancyOp", {"x"}, {"y"}, "f");
  TempDir dir;
  EXPECT_TRUE(contains(import_error(b.save(dir.file("a.onnx"))),
                       "node 'f' (FancyOp): operator 'FancyOp' is not supported"));
  OnnxBuilder c;
  c.input("x", {2}).output("y");
  c.node("Relu", {"x"}, {"y"}, "r").set_domain("com.microsoft");
  EXPECT_TRUE(contains(import_error(c.save(dir.file("b.onnx"))), "domain 'com.microsoft' is not supported"));
}

TEST(ImportErrors, UnsupportedOpset) {
  OnnxBuilder b(20);
  b.input("x", {2}).output("y");
  b.node("Relu", {"x"}, {"y"});
  TempDir dir;
  EXPECT_TRUE(contains(import_error(b.save(dir.file("m.onnx"))), "opset 20 is not supported (supported: 1 to 17)"));
}

TEST(ImportErrors, DeclaredShapeContradictingTheOp) {
  OnnxBuilder b;
  b.input("x", {2, 3}).output("y", {3, 2}, 1, true);
  b.node("Relu", {"x"}, {"y"}, "relu");
  TempDir dir;
  std::string err = import_error(b.save(dir.file("m.onnx")));
  EXPECT_TRUE(contains(err, "node 'relu' (Relu): output 'y' is declared float32[3,2] but the op gives float32[2,3]"))
      << err;
}

TEST(ImportErrors, IncompatibleShapesInAGraph) {
  OnnxBuilder b;
  b.input("x", {2, 3}).output("y");
  b.initializer("W", at::ones({4, 5}));
  b.node("MatMul", {"x", "W"}, {"y"}, "fc");
  TempDir dir;
  std::string err = import_error(b.save(dir.file("m.onnx")));
  EXPECT_TRUE(contains(err, "node 'fc' (MatMul): inner dimensions differ")) << err;
}

TEST(ImportErrors, CorruptInitializerData) {
  OnnxBuilder b;
  b.input("x", {4}).output("y");
  b.initializer("W", at::ones({4}));
  b.model().mutable_graph()->mutable_initializer(0)->set_raw_data("abc");  // 3 bytes for 16
  b.node("Add", {"x", "W"}, {"y"});
  TempDir dir;
  std::string err = import_error(b.save(dir.file("m.onnx")));
  EXPECT_TRUE(contains(err, "initializer 'W': raw data has 3 bytes, shape and type need 16")) << err;
}
