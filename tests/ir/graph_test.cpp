// Graph IR: construction, surgery, verifier, clone.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "shrink/core/error.h"
#include "shrink/exec/session.h"
#include "shrink/ir/graph.h"
#include "shrink/ir/verifier.h"
#include "shrink/ops/shape_inference.h"

using namespace shrink;
using ir::Graph;
using ir::InitKind;
using ir::TensorType;

namespace {

// y = Relu(x @ W^T + b)
Graph tiny_linear() {
  Graph g;
  ir::Value* x = g.add_input("x", TensorType::of(at::kFloat, {ir::kDynamic, 3}));
  ir::Value* w = g.add_initializer("W", at::arange(6, at::kFloat).view({2, 3}), InitKind::Parameter);
  ir::Value* b = g.add_initializer("b", at::tensor({1.0f, -100.0f}), InitKind::Parameter);
  ir::Attributes a;
  a.set("transB", int64_t{1});
  ir::Node* gemm = g.add_node("Gemm", {x, w, b}, {"h"}, a, "fc");
  ir::Node* relu = g.add_node("Relu", {gemm->output(0)}, {"y"}, {}, "relu");
  g.add_output(relu->output(0));
  ops::infer_shapes(g);
  return g;
}

}  // namespace

TEST(Graph, InfersShapesAndKeepsSymbolicBatch) {
  Graph g = tiny_linear();
  EXPECT_EQ(g.value("h")->type.to_string(), "float32[?,2]");
  EXPECT_TRUE(g.initializer("W")->tensor.requires_grad());
  ops::verify_graph(g);
}

TEST(Graph, UsersTrackInputsAndReplaceAllUsesRewires) {
  Graph g = tiny_linear();
  ir::Value* h = g.value("h");
  ASSERT_EQ(h->users.size(), 1u);
  // Insert Neg between fc and relu: h -> Neg -> relu.
  ir::Node* neg = g.insert_node_after(g.find_node("fc"), "Neg", {h}, {"h_neg"});
  std::vector<ir::Node*> users = h->users;
  for (ir::Node* u : users)
    if (u != neg) g.set_input(u, 0, neg->output(0));
  ops::infer_shapes(g);
  ops::verify_graph(g);
  EXPECT_EQ(g.nodes()[1]->op_type, "Neg");
  at::Tensor x = at::tensor({1.0f, 1.0f, 1.0f}).view({1, 3});
  // h = [0+1+2+1, 3+4+5-100] = [4, -88]; relu(-h) = [0, 88]
  at::Tensor y = exec::run_once(g, {x})[0];
  EXPECT_TRUE(at::equal(y, at::tensor({0.0f, 88.0f}).view({1, 2})));
}

TEST(Graph, RemoveNodeRefusesWhileOutputUsed) {
  Graph g = tiny_linear();
  EXPECT_THROW(g.remove_node(g.find_node("fc")), Error);
  // Bypass relu: graph output becomes h, relu can go.
  g.replace_all_uses(g.value("y"), g.value("h"));
  g.remove_node(g.find_node("relu"));
  EXPECT_EQ(g.outputs()[0]->name, "h");
  EXPECT_EQ(g.find_value("y"), nullptr);
  ops::verify_graph(g);
}

TEST(Graph, SliceInitializerKeepsChosenRows) {
  Graph g = tiny_linear();
  g.slice_initializer("W", 0, {1});
  g.slice_initializer("b", 0, {1});
  ops::infer_shapes(g);
  EXPECT_EQ(g.value("y")->type.to_string(), "float32[?,1]");
  EXPECT_TRUE(at::equal(g.initializer("W")->tensor, at::tensor({3.0f, 4.0f, 5.0f}).view({1, 3})));
  EXPECT_TRUE(g.initializer("W")->tensor.requires_grad());
}

TEST(Graph, CloneIsDeep) {
  Graph g = tiny_linear();
  Graph c = g.clone();
  c.initializer("b")->tensor.detach().fill_(7);
  EXPECT_FLOAT_EQ(g.initializer("b")->tensor[0].item<float>(), 1.0f);
  EXPECT_EQ(c.nodes().size(), g.nodes().size());
  EXPECT_EQ(c.value("h")->type.to_string(), g.value("h")->type.to_string());
  ops::verify_graph(c);
}

TEST(Graph, TopologicalSortRestoresOrder) {
  Graph g;
  ir::Value* x = g.add_input("x", TensorType::of(at::kFloat, {2}));
  ir::Node* a = g.add_node("Relu", {x}, {"a"});
  ir::Node* b = g.add_node("Neg", {a->output(0)}, {"b"});
  // Put c (which reads b) before b's producer: out of order.
  ir::Node* c = g.insert_node_before(a, "Abs", {b->output(0)}, {"c"});
  g.add_output(c->output(0));
  EXPECT_THROW(ir::verify_structure(g), Error);
  g.topological_sort();
  ir::verify_structure(g);
  EXPECT_EQ(g.nodes().back()->op_type, "Abs");
}

TEST(Graph, VerifierNamesUndefinedValueAndDuplicateDefinitions) {
  Graph g;
  ir::Value* x = g.add_input("x", TensorType::of(at::kFloat, {2}));
  EXPECT_THROW(g.add_node("Relu", {x}, {"x"}), Error);  // "x" already defined
  try {
    g.add_initializer("x", at::zeros({1}), InitKind::Constant);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'x' is defined more than once"), std::string::npos);
  }
}

TEST(Graph, RenameValueKeepsInitializerLink) {
  Graph g = tiny_linear();
  g.rename_value(g.value("b"), "bias");
  EXPECT_NE(g.initializer("bias"), nullptr);
  EXPECT_EQ(g.initializer("b"), nullptr);
  EXPECT_THROW(g.rename_value(g.value("bias"), "W"), Error);
  ops::verify_graph(g);
}
