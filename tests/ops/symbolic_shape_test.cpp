// Symbolic shape inference: the batch symbol (and products of symbols) carried through
// the shape arithmetic PyTorch emits, and unknown extents exported unnamed. Expected
// extents are hand computations; the exported files are read back as ONNX protos.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include "shrink/exec/session.h"
#include "shrink/ir/graph.h"
#include "shrink/onnx/export.h"
#include "shrink/ops/shape_inference.h"

using namespace shrink;
using ir::Graph;
using ir::InitKind;
using ir::TensorType;

namespace {

TensorType named(std::vector<int64_t> dims, std::vector<std::string> names) {
  TensorType t = TensorType::of(at::kFloat, std::move(dims));
  t.dim_names = std::move(names);
  return t;
}

ir::Value* constant(Graph& g, const std::string& name, std::vector<int64_t> v) {
  return g.add_initializer(name, at::tensor(v, at::kLong), InitKind::Constant);
}

}  // namespace

// PyTorch's channel shuffle: view(n, groups, c / groups, h, w) with n taken from
// x.size(0), transpose, view(n, -1, h, w) - every extent is known up to the batch.
TEST(SymbolicShapes, ChannelShuffleKeepsBatchAndStaticExtents) {
  Graph g;
  ir::Value* x = g.add_input("x", named({ir::kDynamic, 6, 3, 3}, {"N", "", "", ""}));
  ir::Node* shape = g.add_node("Shape", {x}, {"shape"});
  ir::Attributes axis0;
  axis0.set("axis", int64_t{0});
  ir::Node* n = g.add_node("Gather", {shape->output(0), g.add_initializer("zero", at::scalar_tensor(0, at::kLong), InitKind::Constant)},
                           {"n"}, axis0);
  ir::Node* n1 = g.add_node("Unsqueeze", {n->output(0), constant(g, "axes", {0})}, {"n1"});
  ir::Attributes cat;
  cat.set("axis", int64_t{0});
  ir::Node* s5 = g.add_node("Concat", {n1->output(0), constant(g, "rest5", {2, 3, 3, 3})}, {"s5"}, cat);
  ir::Node* r5 = g.add_node("Reshape", {x, s5->output(0)}, {"r5"});
  ir::Attributes perm;
  perm.set("perm", std::vector<int64_t>{0, 2, 1, 3, 4});
  ir::Node* t = g.add_node("Transpose", {r5->output(0)}, {"t"}, perm);
  ir::Node* s4 = g.add_node("Concat", {n1->output(0), constant(g, "rest4", {-1, 3, 3})}, {"s4"}, cat);
  ir::Node* r4 = g.add_node("Reshape", {t->output(0), s4->output(0)}, {"y"});
  g.add_output(r4->output(0));
  ops::infer_shapes(g);
  EXPECT_EQ(g.value("r5")->type.to_string(), "float32[N,2,3,3,3]");
  EXPECT_EQ(g.value("t")->type.to_string(), "float32[N,3,2,3,3]");
  EXPECT_EQ(g.value("y")->type.to_string(), "float32[N,6,3,3]");
  ops::verify_graph(g);

  // The graph still runs at any batch, and the shuffle is the hand-computed one.
  at::Tensor in = at::arange(2 * 6 * 9, at::kFloat).view({2, 6, 3, 3});
  at::Tensor want = in.view({2, 2, 3, 3, 3}).transpose(1, 2).reshape({2, 6, 3, 3});
  EXPECT_TRUE(at::equal(exec::run_once(g, {in})[0], want));
}

// Flatten to (-1, k) and reshapes by products of two symbols name the product.
TEST(SymbolicShapes, ProductsOfSymbolsAreNamed) {
  Graph g;
  ir::Value* x = g.add_input("x", named({ir::kDynamic, ir::kDynamic, 8}, {"N", "S", ""}));
  ir::Node* r = g.add_node("Reshape", {x, constant(g, "to", {-1, 4})}, {"r"});
  ir::Node* shape = g.add_node("Shape", {x}, {"shape"});
  ir::Node* ns = g.add_node("Slice", {shape->output(0), constant(g, "s0", {0}), constant(g, "s1", {2})}, {"ns"});
  ir::Attributes keep;
  keep.set("keepdims", int64_t{1});
  ir::Node* prod = g.add_node("ReduceProd", {ns->output(0)}, {"prod"}, keep);
  ir::Attributes cat;
  cat.set("axis", int64_t{0});
  ir::Node* to = g.add_node("Concat", {prod->output(0), constant(g, "eight", {8})}, {"to2"}, cat);
  ir::Node* r2 = g.add_node("Reshape", {x, to->output(0)}, {"r2"});
  ir::Attributes axis0;
  axis0.set("axis", int64_t{0});
  ir::Node* twice = g.add_node("Concat", {x, x}, {"twice"}, axis0);
  g.add_output(r->output(0));
  g.add_output(r2->output(0));
  g.add_output(twice->output(0));
  ops::infer_shapes(g);
  EXPECT_EQ(g.value("r")->type.to_string(), "float32[2*N*S,4]");
  EXPECT_EQ(g.value("r2")->type.to_string(), "float32[N*S,8]");
  EXPECT_EQ(g.value("twice")->type.to_string(), "float32[2*N,S,8]");
}

// An extent that is no product of symbols (N + M) is unknown, and the exported file
// leaves it unnamed: equal dim_params would promise ONNX Runtime equal sizes.
TEST(SymbolicShapes, UnknownExtentsExportUnnamed) {
  Graph g;
  ir::Value* a = g.add_input("a", named({ir::kDynamic, 4}, {"N", ""}));
  ir::Value* b = g.add_input("b", named({ir::kDynamic, 4}, {"M", ""}));
  ir::Attributes axis0;
  axis0.set("axis", int64_t{0});
  ir::Node* cat = g.add_node("Concat", {a, b}, {"ab"}, axis0);
  ir::Node* relu = g.add_node("Relu", {cat->output(0)}, {"y"});
  ir::Node* neg = g.add_node("Neg", {a}, {"z"});
  g.add_output(relu->output(0));
  g.add_output(neg->output(0));
  ops::infer_shapes(g);
  EXPECT_EQ(g.value("ab")->type.to_string(), "float32[?,4]");
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(onnx_io::export_model_bytes(g)));
  ASSERT_EQ(m.graph().value_info_size(), 1);
  const auto& d = m.graph().value_info(0).type().tensor_type().shape().dim(0);
  EXPECT_FALSE(d.has_dim_value());
  EXPECT_EQ(d.dim_param(), "");
  EXPECT_EQ(m.graph().output(1).type().tensor_type().shape().dim(0).dim_param(), "N");
  EXPECT_EQ(m.graph().output(0).type().tensor_type().shape().dim(0).dim_param(), "");
}
