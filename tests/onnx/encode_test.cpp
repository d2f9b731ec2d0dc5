// Initializers written as streams that standard ops decode (onnx/encode.h): every form
// reads back bit-exact in shrink, runs in ONNX Runtime with the same outputs, passes
// onnx.checker's full check, and a hand-edited encoding is a one-line error naming the
// initializer.
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "shrink/core/error.h"
#include "shrink/exec/session.h"
#include "shrink/onnx/export.h"
#include "shrink/onnx/import.h"
#include "shrink/quantize/codebook.h"
#include "support/onnx_builder.h"
#include "support/ort.h"
#include "support/paths.h"

namespace fs = std::filesystem;
using namespace shrink;
using test_support::OnnxBuilder;
using test_support::TempDir;

namespace {

onnx::ModelProto read_proto(const std::string& path) {
  onnx::ModelProto m;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(m.ParseFromIstream(&in)) << path;
  return m;
}

struct Case {
  std::string what;
  at::Tensor w;
  bool encoded;  // expected to be written as streams
};

std::vector<Case> cases() {
  at::manual_seed(7);
  std::vector<Case> c;
  at::Tensor pruned = at::randn({64, 300});
  pruned.masked_fill_(at::rand({64, 300}).lt(0.9), 0);
  c.push_back({"float32 90% zeros, trained values", pruned, true});
  at::Tensor book = at::randn({16});
  at::Tensor shared = book.index_select(0, at::randint(0, 16, {128 * 90})).view({128, 90});
  shared.masked_fill_(at::rand({128, 90}).lt(0.85), 0);
  c.push_back({"float32 codebook of 16, 85% zeros", shared, true});
  // Runs of zeros longer than any gap the stream holds (rows pruned whole).
  at::Tensor rows = at::randn({200, 100});
  rows.masked_fill_(at::rand({200, 1}).lt(0.7).expand({200, 100}), 0);
  c.push_back({"float32 whole rows pruned", rows, true});
  c.push_back({"int8 dense, 7 distinct values", at::randint(-3, 4, {40, 50}, at::kLong).to(at::kChar), true});
  at::Tensor bias = at::zeros({40000}, at::kInt);
  bias.index_put_({at::arange(0, 40000, 37)}, at::randint(-50000, 50000, {1082}, at::kInt));
  c.push_back({"int32, 1,082 non-zeros of 40,000", bias, true});
  c.push_back({"float32 dense random (stays dense)", at::randn({30, 30}), false});
  // Large enough to scatter straight into its shape (ScatterND on [nnz, 3] indices).
  at::Tensor big = book.index_select(0, at::randint(0, 16, {3 * 160 * 160})).view({3, 160, 160});
  big.masked_fill_(at::rand({3, 160, 160}).lt(0.95), 0);
  c.push_back({"float32 3-D 76,800 elements, codebook of 16, 95% zeros", big, true});
  at::Tensor big_values = at::randn({400, 200});
  big_values.masked_fill_(at::rand({400, 200}).lt(0.9), 0);
  c.push_back({"float32 80,000 elements, 90% zeros, trained values", big_values, true});
  return c;
}

// y = x + W (float W), or x + DequantizeLinear(W, 1) for integers, as a quantized model
// holds them (DequantizeLinear is not folded); saved at `path`.
std::string model_adding(const at::Tensor& w, const std::string& path) {
  OnnxBuilder b;
  b.input("x", w.sizes().vec()).output("y");
  b.initializer("W", w);
  if (w.scalar_type() == at::kFloat) {
    b.node("Add", {"x", "W"}, {"y"});
  } else {
    b.initializer("scale", at::tensor(1.0f));
    b.node("DequantizeLinear", {"W", "scale"}, {"Wf"});
    b.node("Add", {"x", "Wf"}, {"y"});
  }
  return b.save(path);
}

}  // namespace

TEST(Encode, EveryFormReadsBackExactlyAndRunsInOnnxRuntime) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.what);
    std::vector<int64_t> dims = c.w.sizes().vec();
    TempDir dir;
    ir::Graph g = onnx_io::import_model(model_adding(c.w, dir.file("in.onnx")));
    const std::string packed = dir.file("packed.onnx"), dense = dir.file("dense.onnx");
    onnx_io::export_model(g, packed);
    onnx_io::ExportOptions plain;
    plain.storage = onnx_io::Storage::Dense;
    onnx_io::export_model(g, dense, plain);
    onnx::ModelProto m = read_proto(packed);
    bool streams = false;
    for (const auto& n : m.graph().node())
      for (const auto& out : n.output()) streams = streams || out == "W";
    EXPECT_EQ(streams, c.encoded);
    if (c.encoded && c.w.numel() >= 65536 && c.w.ne(0).sum().item<int64_t>() * 4 <= 3 * c.w.numel()) {
      std::string last;
      for (const auto& n : m.graph().node())
        if (n.output(0) == "W") last = n.op_type();
      EXPECT_EQ(last, "ScatterND") << "a large sparse tensor scatters into its shape, no full-size Reshape";
    }
    if (c.encoded) {
      EXPECT_LT(fs::file_size(packed), fs::file_size(dense));
    }
    // shrink reads back the very same tensor.
    ir::Graph again = onnx_io::import_model(packed);
    ASSERT_TRUE(again.initializer("W"));
    EXPECT_TRUE(at::equal(again.initializer("W")->tensor, c.w));
    EXPECT_EQ(again.nodes().size(), c.w.scalar_type() == at::kFloat ? 1u : 2u) << "decode nodes folded at import";
    // ONNX Runtime decodes it to the same values.
    at::Tensor x = at::randn(dims);
    at::Tensor want = x + c.w.to(at::kFloat);
    EXPECT_TRUE(at::equal(test_support::run_onnxruntime(packed, {x})[0], want));
    // onnx.checker with strict shape inference.
    std::string cmd = test_support::python() + " -c \"import onnx; onnx.checker.check_model(onnx.load('" + packed +
                      "'), full_check=True)\"";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
}

// --storage sparse: no decode nodes (nothing for ONNX Runtime to fold at session
// creation), each tensor dense or sparse, the same values in shrink and ONNX Runtime.
TEST(Encode, SparseStorageWritesNoDecodeNodes) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.what);
    std::vector<int64_t> dims = c.w.sizes().vec();
    TempDir dir;
    ir::Graph g = onnx_io::import_model(model_adding(c.w, dir.file("in.onnx")));
    const std::string sparse = dir.file("sparse.onnx"), dense = dir.file("dense.onnx");
    onnx_io::ExportOptions eo;
    eo.storage = onnx_io::Storage::Sparse;
    onnx_io::export_model(g, sparse, eo);
    eo.storage = onnx_io::Storage::Dense;
    onnx_io::export_model(g, dense, eo);
    onnx::ModelProto m = read_proto(sparse);
    EXPECT_EQ(m.graph().node_size(), c.w.scalar_type() == at::kFloat ? 1 : 2) << "no decode nodes";
    const int64_t nnz = c.w.ne(0).sum().item<int64_t>();
    // Sparse at least where values and varint positions (3 bytes at most below 2^21)
    // beat dense by 256 bytes or more; smaller than dense whenever taken.
    const bool surely_sparse = nnz * (c.w.element_size() + 3) + 256 + 32 < c.w.numel() * c.w.element_size();
    if (surely_sparse) EXPECT_EQ(m.graph().sparse_initializer_size(), 1);
    if (m.graph().sparse_initializer_size()) {
      EXPECT_LT(fs::file_size(sparse), fs::file_size(dense));
    }
    ir::Graph again = onnx_io::import_model(sparse);
    ASSERT_TRUE(again.initializer("W"));
    EXPECT_TRUE(at::equal(again.initializer("W")->tensor, c.w));
    at::Tensor x = at::randn(dims);
    EXPECT_TRUE(at::equal(test_support::run_onnxruntime(sparse, {x})[0], x + c.w.to(at::kFloat)));
  }
  EXPECT_EQ(onnx_io::parse_storage("sparse"), onnx_io::Storage::Sparse);
  EXPECT_THROW(onnx_io::parse_storage("packed"), Error);
}

// A hand-edited file: the codebook cut to two entries, so codes point past its end.
TEST(Encode, UndecodableStreamIsAnErrorNamingTheInitializer) {
  at::manual_seed(3);
  OnnxBuilder b;
  b.input("x", {40, 50}).output("y");
  at::Tensor w = at::tensor({0.5f, -0.5f, 2.0f, 1.0f}).index_select(0, at::randint(0, 4, {2000})).view({40, 50});
  b.initializer("fc.weight", w);
  b.node("Add", {"x", "fc.weight"}, {"y"});
  TempDir dir;
  ir::Graph g = onnx_io::import_model(b.save(dir.file("in.onnx")));
  onnx_io::export_model(g, dir.file("packed.onnx"));
  onnx::ModelProto m = read_proto(dir.file("packed.onnx"));
  bool edited = false;
  for (auto& t : *m.mutable_graph()->mutable_initializer())
    if (t.doc_string() == "~k") {
      t.set_dims(0, 2);
      t.set_raw_data(t.raw_data().substr(0, 8));
      edited = true;
    }
  ASSERT_TRUE(edited) << "a codebook stream";
  {
    std::ofstream out(dir.file("edited.onnx"), std::ios::binary);
    m.SerializeToOstream(&out);
  }
  try {
    onnx_io::import_model(dir.file("edited.onnx"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("edited.onnx: cannot decode encoded initializer 'fc.weight'"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

// k-means with a linear start on three well separated clusters: the centroids are the
// clusters' means (a hand computation), zeros stay zero, and fine-tuning moves each
// centroid by the sum of its weights' moves.
TEST(Codebook, CentroidsAreClusterMeansAndMoveBySummedSteps) {
  ir::Graph g;
  at::Tensor w = at::tensor({0.0f, -1.0f, -1.1f, 0.0f, 0.5f, 0.6f, 0.7f, 2.0f, 2.2f, 0.0f}).view({2, 5});
  ir::Value* x = g.add_input("x", ir::TensorType::of(at::kFloat, {1, 5}));
  ir::Value* wv = g.add_initializer("w", w.clone(), ir::InitKind::Parameter);
  ir::Attributes a;
  a.set("transB", int64_t{1});
  ir::Node* mm = g.add_node("Gemm", {x, wv}, {"y"}, a, "fc");
  g.add_output(mm->outputs()[0]);
  quantize::CodebookOptions o;
  o.bits = 2;  // 3 centroids and zero
  quantize::WeightSharing sharing(g, o);
  at::Tensor shared = g.initializer("w")->tensor;
  at::Tensor want = at::tensor({0.0f, -1.05f, -1.05f, 0.0f, 0.6f, 0.6f, 0.6f, 2.1f, 2.1f, 0.0f}).view({2, 5});
  EXPECT_TRUE(at::allclose(shared, want, 0, 1e-6)) << shared;
  ASSERT_EQ(sharing.layers().size(), 1u);
  EXPECT_EQ(sharing.layers()[0].entries, 3);
  EXPECT_EQ(sharing.layers()[0].nonzeros, 7);
  at::NoGradGuard no_grad;
  // An optimizer "step": every weight of the middle cluster up by 0.1, a pruned one too.
  shared.view(-1).index_put_({at::tensor({4, 5, 6, 0}, at::kLong)}, shared.view(-1).index_select(0, at::tensor({4, 5, 6, 0}, at::kLong)) + 0.1f);
  sharing.after_step();
  want.view(-1).index_put_({at::tensor({4, 5, 6}, at::kLong)}, at::full({3}, 0.6f + 0.3f));
  EXPECT_TRUE(at::allclose(shared, want, 0, 1e-6)) << shared;
  o.bits = 9;
  EXPECT_THROW(quantize::WeightSharing(g, o), Error);
}

// Per-layer bits take precedence over --bits; an excluded layer stays float, and its
// pruned zeros stay zero through fine-tuning (they came back before: a 95%-pruned fc
// excluded from sharing was written dense, 1.6 MB instead of 30 KB).
TEST(Codebook, LayerBitsAndExcludedLayersKeepTheirZeros) {
  at::manual_seed(0);
  ir::Graph g;
  ir::Value* x = g.add_input("x", ir::TensorType::of(at::kFloat, {1, 64}));
  at::Tensor w1 = at::randn({64, 64}) * (at::rand({64, 64}) < 0.5f);
  at::Tensor w2 = at::randn({10, 64}) * (at::rand({10, 64}) < 0.3f);
  ir::Attributes a;
  a.set("transB", int64_t{1});
  ir::Node* fc = g.add_node("Gemm", {x, g.add_initializer("w1", w1.clone(), ir::InitKind::Parameter)}, {"h"}, a, "fc");
  ir::Node* fc2 = g.add_node("Gemm", {fc->outputs()[0], g.add_initializer("w2", w2.clone(), ir::InitKind::Parameter)},
                             {"y"}, a, "fc2");
  g.add_output(fc2->outputs()[0]);
  quantize::CodebookOptions o;
  o.bits = 2;
  o.layer_bits = {{"fc", 3}};
  {
    ir::Graph c = g.clone();
    quantize::WeightSharing sharing(c, o);
    EXPECT_EQ(sharing.layers()[0].bits, 3);
    EXPECT_EQ(sharing.layers()[0].entries, 7);  // 2^3 - 1 and zero
    EXPECT_EQ(sharing.layers()[1].bits, 2);
    EXPECT_EQ(sharing.layers()[1].entries, 3);
    EXPECT_EQ(std::get<0>(at::_unique2(c.initializer("w1")->tensor, true, false, false)).numel(), 8);
  }
  o.exclude_nodes = {"fc"};
  quantize::WeightSharing sharing(g, o);
  EXPECT_EQ(sharing.layers()[0].note, "skipped: excluded");
  at::NoGradGuard no_grad;
  at::Tensor t = g.initializer("w1")->tensor;
  t.add_(0.01);  // an optimizer step moves every weight, the pruned ones too
  sharing.after_step();
  EXPECT_TRUE(at::equal(t.eq(0), w1.eq(0)));
  EXPECT_TRUE(at::allclose(t.masked_select(w1.ne(0)), w1.masked_select(w1.ne(0)) + 0.01));
  o.layer_bits = {{"fc", 9}};
  EXPECT_THROW(quantize::WeightSharing(g, o), Error);
  o.layer_bits = {{"nope", 3}};
  EXPECT_THROW(quantize::WeightSharing(g, o), Error);
}
