// ONNX external data: files that ONNX's own Python writer stores with their tensors
// beside them (one file for all, and one per tensor as PyTorch's exporter does past
// 2 GiB) import to the same graph as the model saved whole; shrink's external files load
// in ONNX Runtime and pass onnx.checker; locations that lead elsewhere are refused.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <filesystem>
#include <fstream>

#include "shrink/core/error.h"
#include "shrink/exec/session.h"
#include "shrink/onnx/export.h"
#include "shrink/onnx/import.h"
#include "support/errors.h"
#include "support/onnx_builder.h"
#include "support/ort.h"
#include "support/paths.h"
#include "support/process.h"

namespace fs = std::filesystem;
using namespace shrink;
using test_support::error_of;
using test_support::OnnxBuilder;
using test_support::TempDir;

namespace {

// Conv -> Relu -> Flatten -> Gemm, with a Constant node's tensor on the way.
OnnxBuilder small_model() {
  at::manual_seed(0);
  OnnxBuilder b;
  b.input("x", {-1, 2, 6, 6}).output("y");
  b.initializer("conv.weight", at::randn({4, 2, 3, 3}));
  b.initializer("conv.bias", at::randn({4}));
  b.initializer("fc.weight", at::randn({5, 64}));
  b.initializer("fc.bias", at::randn({5}));
  b.node("Conv", {"x", "conv.weight", "conv.bias"}, {"c"}, "conv");
  auto& k = b.node("Constant", {}, {"k"}, "k");
  auto* a = k.add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  onnx_io::tensor_to_proto(at::rand({4, 1, 1}) + 0.5, *a->mutable_t());
  b.node("Mul", {"c", "k"}, {"m"}, "scale");
  b.node("Relu", {"m"}, {"r"}, "relu");
  b.node("Flatten", {"r"}, {"f"}, "flatten");
  auto& fc = b.node("Gemm", {"f", "fc.weight", "fc.bias"}, {"y"}, "fc");
  OnnxBuilder::attr(fc, "transB", int64_t{1});
  return b;
}

// ONNX's Python writer: onnx.save_model(save_as_external_data=True, size_threshold=0).
void save_external_with_onnx(const std::string& in, const std::string& out, bool one_file) {
  std::string code = "import onnx,sys; m=onnx.load(sys.argv[1]); onnx.save_model(m, sys.argv[2], "
                     "save_as_external_data=True, all_tensors_to_one_file=" +
                     std::string(one_file ? "True, location='weights.bin'" : "False") + ", size_threshold=0)";
  auto r = test_support::run_command(test_support::python() + " -c \"" + code + "\" " + in + " " + out);
  ASSERT_EQ(r.status, 0) << r.output;
}

void expect_same_graph(const ir::Graph& a, const ir::Graph& b) {
  ASSERT_EQ(a.initializers().size(), b.initializers().size());
  for (const auto& [name, init] : a.initializers()) {
    ASSERT_TRUE(b.initializer(name)) << name;
    EXPECT_TRUE(at::equal(init.tensor.detach(), b.initializer(name)->tensor.detach())) << name;
    EXPECT_EQ(init.kind, b.initializer(name)->kind) << name;
  }
  at::Tensor x = at::randn({3, 2, 6, 6});
  EXPECT_TRUE(at::equal(exec::run_once(a, {x})[0], exec::run_once(b, {x})[0]));
}

// Rewrites initializer `name` of the model at `path` to point into external data.
void point(const std::string& path, const std::string& name, const std::string& location, const std::string& offset,
           const std::string& length) {
  onnx::ModelProto m;
  {
    std::ifstream in(path, std::ios::binary);
    ASSERT_TRUE(m.ParseFromIstream(&in));
  }
  for (auto& t : *m.mutable_graph()->mutable_initializer()) {
    if (t.name() != name) continue;
    t.clear_raw_data();
    t.clear_external_data();
    t.set_data_location(onnx::TensorProto::EXTERNAL);
    for (auto [k, v] : {std::pair<std::string, std::string>{"location", location}, {"offset", offset}, {"length", length}}) {
      if (v.empty()) continue;
      auto* e = t.add_external_data();
      e->set_key(k);
      e->set_value(v);
    }
  }
  std::ofstream(path, std::ios::binary | std::ios::trunc) << m.SerializeAsString();
}

}  // namespace

TEST(ExternalData, ReadsWhatOnnxWritesInOneFileAndInAFilePerTensor) {
  TempDir dir;
  const std::string whole = small_model().save(dir.file("whole.onnx"));
  ir::Graph reference = onnx_io::import_model(whole);
  fs::create_directories(dir.file("one"));
  fs::create_directories(dir.file("each"));
  save_external_with_onnx(whole, dir.file("one/model.onnx"), true);
  save_external_with_onnx(whole, dir.file("each/model.onnx"), false);
  ASSERT_TRUE(fs::exists(dir.file("one/weights.bin")));
  EXPECT_LT(fs::file_size(dir.file("one/model.onnx")), 1500u);  // the tensors are elsewhere
  EXPECT_GE(std::distance(fs::directory_iterator(dir.file("each")), fs::directory_iterator()), 5);
  expect_same_graph(reference, onnx_io::import_model(dir.file("one/model.onnx")));
  expect_same_graph(reference, onnx_io::import_model(dir.file("each/model.onnx")));
  // From another working directory: locations are relative to the model, not to the process.
  // Its bytes on disk count the data file too.
  auto r = test_support::run_command(std::string("cd / && ") + SHRINK_CLI + " info --json " + dir.file("one/model.onnx"));
  ASSERT_EQ(r.status, 0) << r.output;
  const auto at = r.output.find("\"file_bytes\": ");
  ASSERT_NE(at, std::string::npos) << r.output;
  EXPECT_EQ(std::stoll(r.output.substr(at + 14)),
            static_cast<long long>(fs::file_size(dir.file("one/model.onnx")) + fs::file_size(dir.file("one/weights.bin"))));
  // Bytes alone have no directory to read from: said, not guessed.
  std::ifstream in(dir.file("one/model.onnx"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(error_of([&] { onnx_io::import_model_bytes(bytes, "m"); }).find("imported from its path"),
            std::string::npos);
}

TEST(ExternalData, WrittenBesideTheModelLoadsInOnnxRuntimeAndOnnx) {
  TempDir dir;
  ir::Graph g = onnx_io::import_model(small_model().save(dir.file("whole.onnx")));
  onnx_io::ExportOptions eo;
  eo.external_data = onnx_io::ExportOptions::ExternalData::Always;
  eo.storage = onnx_io::Storage::Dense;
  onnx_io::export_model(g, dir.file("out.onnx"), eo);
  ASSERT_TRUE(fs::exists(dir.file("out.onnx.data")));
  // fc.weight (1,280 bytes) goes out; the small tensors stay in the model.
  EXPECT_GE(fs::file_size(dir.file("out.onnx.data")), 1280u);
  expect_same_graph(g, onnx_io::import_model(dir.file("out.onnx")));
  at::Tensor x = at::randn({2, 2, 6, 6});
  at::Tensor ours = exec::run_once(g, {x})[0];
  at::Tensor ort = test_support::run_onnxruntime(dir.file("out.onnx"), {x})[0];
  EXPECT_LE((ort - ours).abs().max().item<double>(), 1e-6 * ours.abs().max().item<double>() + 1e-6);
  // ONNX's checker and loader read the same bytes for fc.weight.
  std::string code =
      "import onnx,sys,numpy as np; from onnx import numpy_helper as nh; onnx.checker.check_model(sys.argv[1], "
      "full_check=True); m=onnx.load(sys.argv[1]); w={t.name: nh.to_array(t) for t in m.graph.initializer}; "
      "print(float(np.abs(w['fc.weight']).sum()))";
  auto r = test_support::run_command(test_support::python() + " -c \"" + code + "\" " + dir.file("out.onnx"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NEAR(std::stod(r.output), g.initializer("fc.weight")->tensor.abs().sum().item<double>(), 1e-3);
}

TEST(ExternalData, LocationsLeadingOutOfTheModelDirectoryAndBadRangesAreRefused) {
  TempDir dir;
  const std::string whole = small_model().save(dir.file("whole.onnx"));
  fs::create_directories(dir.file("m"));
  save_external_with_onnx(whole, dir.file("m/model.onnx"), true);
  const std::string secret = dir.file("secret.bin");
  std::ofstream(secret, std::ios::binary) << std::string(4096, 'x');
  fs::create_symlink(secret, dir.file("m/link.bin"));
  const std::string model = dir.file("m/model.onnx");
  struct Case {
    std::string location, offset, length, expect;
  };
  const std::vector<Case> cases = {
      {"../secret.bin", "0", "1280", "leads out of the model's directory"},
      {"a/../../secret.bin", "0", "1280", "leads out of the model's directory"},
      {secret, "0", "1280", "is absolute"},
      {"link.bin", "0", "1280", "a link leading out of the model's directory"},
      {"missing.bin", "0", "1280", "cannot open external data file"},
      {"weights.bin", "0", "1276", "holds 1276 bytes, its type and shape need 1280"},
      {"weights.bin", "999999", "1280", "is past the end"},
      {"weights.bin", "1000", "1280", "runs past the end"},
      {"weights.bin", "abc", "1280", "expected"},
      {"weights.bin", "-5", "1280", "expected"},
      {"", "0", "1280", "has no location"},
      {".", "0", "1280", "is not a regular file"},
  };
  const std::string saved = model + ".orig";
  fs::copy_file(model, saved);
  for (const Case& c : cases) {
    fs::copy_file(saved, model, fs::copy_options::overwrite_existing);
    point(model, "fc.weight", c.location, c.offset, c.length);
    std::string e = error_of([&] { onnx_io::import_model(model); });
    EXPECT_NE(e.find(model + ": initializer 'fc.weight'"), std::string::npos) << c.location << ": " << e;
    EXPECT_NE(e.find(c.expect), std::string::npos) << c.location << ": " << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
  // The command line: one line naming the file and the tensor, exit status 1.
  fs::copy_file(saved, model, fs::copy_options::overwrite_existing);
  point(model, "fc.weight", "../secret.bin", "0", "1280");
  auto r = test_support::run_command(std::string(SHRINK_CLI) + " info " + model);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("initializer 'fc.weight': external data location"), std::string::npos) << r.output;
}
