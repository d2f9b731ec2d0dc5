// Export: round trip through our importer, and agreement with ONNX Runtime on every
// pytorch-converted conformance case.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "conformance/conformance.h"
#include "shrink/core/error.h"
#include "shrink/exec/session.h"
#include "shrink/onnx/export.h"
#include "shrink/onnx/import.h"
#include "shrink/onnx/tensor_proto.h"
#include "support/onnx_builder.h"
#include "support/ort.h"
#include "support/paths.h"

namespace fs = std::filesystem;
using namespace shrink;
using test_support::OnnxBuilder;
using test_support::TempDir;

namespace {

std::vector<at::Tensor> case_inputs(const fs::path& dir) {
  std::vector<at::Tensor> in;
  for (int i = 0; fs::exists(dir / ("test_data_set_0/input_" + std::to_string(i) + ".pb")); ++i)
    in.push_back(onnx_io::read_tensor_file((dir / ("test_data_set_0/input_" + std::to_string(i) + ".pb")).string()));
  return in;
}

double max_diff(const at::Tensor& a, const at::Tensor& b) {
  if (a.sizes() != b.sizes()) return 1e30;
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

}  // namespace

TEST(Export, RoundTripIsLossless) {
  OnnxBuilder b(11);
  b.input("x", {-1, 1, 4, 4}).output("y");
  b.initializer("W", at::randn({2, 1, 3, 3}));
  b.initializer("B", at::randn({2}));
  auto& conv = b.node("Conv", {"x", "W", "B"}, {"c"}, "conv");
  OnnxBuilder::attr(conv, "pads", std::vector<int64_t>{1, 1, 1, 1});
  auto& sq = b.node("Squeeze", {"c"}, {"s"}, "sq");  // opset 11 form: upgraded on import
  OnnxBuilder::attr(sq, "axes", std::vector<int64_t>{});
  b.node("Relu", {"c"}, {"y"}, "relu");
  TempDir dir;
  ir::Graph g = onnx_io::import_model(b.save(dir.file("in.onnx")));
  onnx_io::export_model(g, dir.file("out.onnx"));
  ir::Graph again = onnx_io::import_model(dir.file("out.onnx"));
  EXPECT_EQ(again.opset, 13);
  ASSERT_EQ(again.nodes().size(), g.nodes().size());
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    EXPECT_EQ(again.nodes()[i]->name, g.nodes()[i]->name);
    EXPECT_EQ(again.nodes()[i]->op_type, g.nodes()[i]->op_type);
  }
  EXPECT_EQ(again.inputs()[0]->type.to_string(), "float32[N,1,4,4]");
  EXPECT_EQ(again.initializer("W")->kind, ir::InitKind::Parameter);
  EXPECT_TRUE(at::equal(again.initializer("W")->tensor, g.initializer("W")->tensor));
  at::Tensor x = at::randn({3, 1, 4, 4});
  EXPECT_TRUE(at::equal(exec::run_once(g, {x})[0], exec::run_once(again, {x})[0]));
}

TEST(Export, SparseInitializerWhenItPaysAndOnnxRuntimeReadsIt) {
  OnnxBuilder b;
  b.input("x", {2, 100}).output("y");
  at::Tensor w = at::zeros({100, 10});
  w.index_put_({at::arange(0, 100, 7), at::arange(0, 100, 7) % 10}, 1.5);
  b.initializer("W", w);
  b.node("MatMul", {"x", "W"}, {"y"});
  TempDir dir;
  ir::Graph g = onnx_io::import_model(b.save(dir.file("in.onnx")));
  onnx_io::export_model(g, dir.file("sparse.onnx"));
  onnx_io::export_model(g, dir.file("dense.onnx"), {onnx_io::Storage::Dense, true});
  EXPECT_LT(fs::file_size(dir.file("sparse.onnx")) * 5, fs::file_size(dir.file("dense.onnx")));
  at::Tensor x = at::randn({2, 100});
  at::Tensor ours = exec::run_once(g, {x})[0];
  EXPECT_LE(max_diff(test_support::run_onnxruntime(dir.file("sparse.onnx"), {x})[0], ours), 1e-5);
  ir::Graph again = onnx_io::import_model(dir.file("sparse.onnx"));
  EXPECT_TRUE(at::equal(again.initializer("W")->tensor, w));
}

// A pruned int8 weight (DequantizeLinear -> MatMul, as QDQ export writes it) and a
// sparse int32 bias are written in a compact form when that is smaller: the weight as
// relative positions and its int8 values, the bias as codes, decoded by standard ops. ONNX Runtime loads them as they are, and shrink
// reads back the same tensors.
TEST(Export, QuantizedWeightsAndBiasesAreStoredSparseWhenSmaller) {
  OnnxBuilder b;
  b.input("x", {2, 300}).output("y");
  at::Tensor q = at::randint(-127, 128, {300, 400}, at::kLong).to(at::kChar);
  q.masked_fill_(at::rand({300, 400}).lt(0.9), 0);  // 90% pruned
  at::Tensor bias = at::zeros({400}, at::kInt);
  bias.index_put_({at::arange(0, 400, 9)}, 1000);
  b.initializer("Wq", q);
  b.initializer("scale", at::tensor(0.01f));
  b.initializer("zero", at::zeros({}, at::kChar));
  b.initializer("Bq", bias);
  b.initializer("bscale", at::tensor(0.001f));
  b.node("DequantizeLinear", {"Wq", "scale", "zero"}, {"W"});
  b.node("MatMul", {"x", "W"}, {"xw"});
  b.node("DequantizeLinear", {"Bq", "bscale"}, {"B"});
  b.node("Add", {"xw", "B"}, {"y"});
  TempDir dir;
  ir::Graph g = onnx_io::import_model(b.save(dir.file("in.onnx")));
  onnx_io::export_model(g, dir.file("sparse.onnx"));
  onnx_io::export_model(g, dir.file("dense.onnx"), {onnx_io::Storage::Dense, true});
  onnx::ModelProto m;
  {
    std::ifstream in(dir.file("sparse.onnx"), std::ios::binary);
    ASSERT_TRUE(m.ParseFromIstream(&in));
  }
  std::set<std::string> sparse;
  for (const auto& sp : m.graph().sparse_initializer()) {
    sparse.insert(sp.values().name());
    EXPECT_EQ(sp.indices().data_type(), onnx::TensorProto::INT64);
    EXPECT_TRUE(sp.indices().raw_data().empty()) << "positions as varints, not raw int64";
  }
  // The bias too: 45 non-zeros of 400 cost 4 bytes and 1-2 bytes of position each,
  // against 1,600 bytes dense.
  // Both are smaller as streams (the bias: 1-bit codes into its two values), so nothing
  // is left sparse: a sparse initializer must beat every other form by 256 bytes.
  EXPECT_TRUE(sparse.empty());
  std::set<std::string> decoded;
  for (const auto& n : m.graph().node())
    for (const auto& out : n.output())
      if (out == "Wq" || out == "Bq") decoded.insert(out);
  EXPECT_EQ(decoded, (std::set<std::string>{"Bq", "Wq"})) << "written as streams nodes decode";
  // 120,000 int8 weights dense; about 12,000 non-zeros at a byte each and about 5 bits
  // of position (varint positions cost 2-3 bytes: 2.5x smaller than dense at best).
  EXPECT_LT(fs::file_size(dir.file("sparse.onnx")) * 11, fs::file_size(dir.file("dense.onnx")) * 2);
  at::Tensor x = at::randn({2, 300});
  at::Tensor ours = exec::run_once(g, {x})[0];
  EXPECT_LE(max_diff(test_support::run_onnxruntime(dir.file("sparse.onnx"), {x})[0], ours), 1e-4);
  ir::Graph again = onnx_io::import_model(dir.file("sparse.onnx"));
  EXPECT_TRUE(at::equal(again.initializer("Wq")->tensor, q));
  EXPECT_TRUE(at::equal(again.initializer("Bq")->tensor, bias));
}

TEST(Export, RejectsInvalidGraphAndWritesNothing) {
  ir::Graph g;
  ir::Value* x = g.add_input("x", ir::TensorType::of(at::kFloat, {2}));
  ir::Node* n = g.add_node("Relu", {x}, {"y"}, {}, "custom");
  n->domain = "com.example";
  g.add_output(n->output(0));
  TempDir dir;
  try {
    onnx_io::export_model(g, dir.file("out.onnx"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("node 'custom' (Relu): op of domain 'com.example' has no ONNX form"),
              std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir.file("out.onnx")));
  EXPECT_FALSE(fs::exists(dir.file("out.onnx.tmp")));
}

// Every pytorch-converted case: shrink imports, exports; ONNX Runtime runs the export
// with outputs equal to shrink's.
TEST(Export, OnnxRuntimeAgreesOnPytorchConvertedSuite) {
  fs::path suite = fs::path(test_support::onnx_testdata_dir()) / "pytorch-converted";
  ASSERT_TRUE(fs::exists(suite));
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(suite)) {
    SCOPED_TRACE(entry.path().filename().string());
    ir::Graph g = onnx_io::import_model((entry.path() / "model.onnx").string());
    std::vector<at::Tensor> inputs = case_inputs(entry.path());
    std::vector<at::Tensor> ours = exec::run_once(g, inputs);
    TempDir dir;
    onnx_io::export_model(g, dir.file("export.onnx"));
    std::vector<at::Tensor> theirs = test_support::run_onnxruntime(dir.file("export.onnx"), inputs);
    ASSERT_EQ(theirs.size(), ours.size());
    for (size_t i = 0; i < ours.size(); ++i)
      EXPECT_LE(max_diff(theirs[i], ours[i]), 1e-4 * std::max(1.0, ours[i].abs().max().item<double>()));
    ++checked;
  }
  EXPECT_EQ(checked, 82);
}
