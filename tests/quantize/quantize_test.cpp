// Static post-training quantization: the exported QDQ model against ONNX Runtime and
// onnx.checker, shrink's int8 kernels (lower_int8) against both, and the bad inputs.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "shrink/exec/session.h"
#include "shrink/factorize/factorize.h"
#include "shrink/onnx/export.h"
#include "shrink/onnx/import.h"
#include "shrink/ops/quant.h"
#include "shrink/passes/pass.h"
#include "shrink/ops/shape_inference.h"
#include "shrink/quantize/equalize.h"
#include "shrink/quantize/qat.h"
#include "shrink/quantize/quantize.h"
#include "shrink/zoo/zoo.h"
#include "support/errors.h"
#include "support/ort.h"
#include "support/paths.h"
#include "support/process.h"

#include <fstream>

#include "shrink/io/npy.h"

using namespace shrink;

namespace {

// `count` seeded batches of standard normal images.
std::function<bool(std::vector<at::Tensor>&)> random_batches(int count, std::vector<int64_t> shape) {
  auto left = std::make_shared<int>(count);
  auto gen = std::make_shared<at::Generator>(at::detail::createCPUGenerator(7));
  return [=](std::vector<at::Tensor>& in) {
    if ((*left)-- <= 0) return false;
    in = {at::randn(shape, *gen)};
    return true;
  };
}

int count_ops(const ir::Graph& g, const std::string& op) {
  int n = 0;
  for (const auto& node : g.nodes()) n += node->op_type == op;
  return n;
}

const at::Tensor& init(const ir::Graph& g, const ir::Value* v) {
  const ir::Initializer* i = g.initializer(v->name);
  EXPECT_NE(i, nullptr) << v->name << " is not an initializer";
  return i->tensor;
}

// One quantization step of the classifier's input, carried through its weights: the most a
// logit moves when each input of the (float) classifier moves by one step.
at::Tensor one_step_of_classifier(const ir::Graph& g) {
  const ir::Node* fc = g.find_node("fc");
  const ir::Node* x_dq = fc->input(0)->producer;
  const ir::Node* w_dq = fc->input(1)->producer;
  EXPECT_EQ(x_dq->op_type, "DequantizeLinear");
  EXPECT_EQ(w_dq->op_type, "DequantizeLinear");
  at::Tensor w = ops::dequantize_linear(init(g, w_dq->input(0)), init(g, w_dq->input(1)), init(g, w_dq->input(2)),
                                        w_dq->attrs.get_int("axis", 1));
  double step = init(g, x_dq->input(1)).item<double>();
  bool trans_b = fc->attrs.get_int("transB", 0) != 0;
  return (trans_b ? w.abs().sum(1) : w.abs().sum(0)) * step;  // [classes]
}

}  // namespace

TEST(Quantize, StaticResNetExportsQdqThatOnnxRuntimeAndTheInt8KernelsAgreeOn) {
  test_support::TempDir dir;
  zoo::ModelOptions mo;
  ir::Graph g = zoo::build_model("resnet20", mo);
  quantize::QuantizeResult r = quantize::quantize(g, {}, random_batches(4, {16, 1, 28, 28}));
  EXPECT_EQ(r.calibration_batches, 4);
  int convs = 0;
  for (const auto& l : r.layers) {
    EXPECT_EQ(l.skipped, "") << l.node;
    convs += l.op == "Conv";
    EXPECT_LT(l.weight_bytes_after * 3, l.weight_bytes_before) << l.node;  // int8 + int32 bias
  }
  EXPECT_GE(convs, 19);
  // The QDQ form ONNX Runtime fuses: int8 weights with the output-channel axis, int32 bias.
  for (const auto& node : g.nodes()) {
    if (node->op_type != "Conv" && node->op_type != "Gemm") continue;
    const ir::Node* w = node->input(1)->producer;
    ASSERT_EQ(w->op_type, "DequantizeLinear") << node->name;
    EXPECT_EQ(init(g, w->input(0)).scalar_type(), at::kChar);
    int64_t want = node->op_type == "Conv" ? 0 : (node->attrs.get_int("transB", 0) ? 0 : 1);
    EXPECT_EQ(w->attrs.get_int("axis", 1), want) << node->name;
    const ir::Node* b = node->input(2)->producer;
    ASSERT_EQ(b->op_type, "DequantizeLinear") << node->name;
    EXPECT_EQ(init(g, b->input(0)).scalar_type(), at::kInt);
  }
  std::string path = dir.file("q.onnx");
  onnx_io::export_model(g, path);
  auto check = test_support::run_command(test_support::python() +
                                         " -c \"import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]), "
                                         "full_check=True)\" " + path);
  EXPECT_EQ(check.status, 0) << check.output;

  // shrink runs it on int8 kernels: no float Conv, the residual Adds in int8 too.
  ir::Graph lowered = onnx_io::import_model(path);
  passes::make_pipeline("inference").run(lowered);
  EXPECT_EQ(count_ops(lowered, "Conv"), 0);
  EXPECT_EQ(count_ops(lowered, "Int8Conv"), convs);
  EXPECT_EQ(count_ops(lowered, "Int8Add"), 9);
  ir::Graph reference = onnx_io::import_model(path);  // QDQ by the spec's reference kernels
  passes::make_pipeline("portable").run(reference);

  at::manual_seed(3);
  at::Tensor x = at::randn({32, 1, 28, 28});
  at::Tensor ort = test_support::run_onnxruntime(path, {x})[0];
  at::Tensor int8 = exec::run_once(lowered, {x})[0];
  at::Tensor ref = exec::run_once(reference, {x})[0];
  at::Tensor step = one_step_of_classifier(g);
  std::printf("logits: int8 vs ONNX Runtime max |diff| %.3g, reference vs ONNX Runtime %.3g, one step %.3g..%.3g\n",
              (int8 - ort).abs().max().item<double>(), (ref - ort).abs().max().item<double>(),
              step.min().item<double>(), step.max().item<double>());
  EXPECT_TRUE((int8 - ort).abs().le(step + 1e-5).all().item<bool>())
      << "int8 vs ONNX Runtime: " << (int8 - ort).abs().max().item<float>() << " > " << step.min().item<float>();
  EXPECT_TRUE((ref - ort).abs().le(step + 1e-5).all().item<bool>())
      << "reference vs ONNX Runtime: " << (ref - ort).abs().max().item<float>();
  // And quantization costs little against the float model on these inputs.
  ir::Graph fp = zoo::build_model("resnet20", mo);
  at::Tensor f = exec::run_once(fp, {x})[0];
  EXPECT_GT(f.argmax(1).eq(int8.argmax(1)).to(at::kFloat).mean().item<float>(), 0.8);
}

// Layers without a bias (the first factor of every SVD-factorized convolution and linear
// layer) quantize, export, and run on shrink's int8 kernels as in ONNX Runtime. Found by
// `shrink compress` on ResNet-20: its latency recipe quantizes factorized candidates, and
// lowering a bias-less Conv made an Int8Conv without its bias input ("required input 3
// is missing").
TEST(Quantize, LayersWithoutBiasRunOnTheInt8KernelsAsInOnnxRuntime) {
  test_support::TempDir dir;
  zoo::ModelOptions mo;
  ir::Graph g = zoo::build_model("lenet5", mo);
  factorize::FactorizeOptions fo;
  fo.rule = factorize::parse_rank("2");
  auto layers = factorize::factorize(g, fo);
  int bias_free = 0;
  for (const auto& node : g.nodes())
    bias_free += (node->op_type == "Conv" || node->op_type == "Gemm") && (node->inputs().size() < 3 || !node->input(2));
  ASSERT_GE(bias_free, 3) << "the factorized LeNet-5 should have bias-free first factors";
  quantize::quantize(g, {}, random_batches(4, {16, 1, 28, 28}));
  std::string path = dir.file("q.onnx");
  onnx_io::export_model(g, path);
  ir::Graph lowered = onnx_io::import_model(path);
  passes::make_pipeline("inference").run(lowered);
  EXPECT_GE(count_ops(lowered, "Int8Conv"), 2);
  at::manual_seed(5);
  at::Tensor x = at::randn({8, 1, 28, 28});
  at::Tensor ort = test_support::run_onnxruntime(path, {x})[0];
  at::Tensor int8 = exec::run_once(lowered, {x})[0];
  // Within a few quantization steps of the logits (int8 rounding differs between engines).
  double scale = ort.abs().max().item<double>();
  EXPECT_LT((int8 - ort).abs().max().item<double>(), 0.05 * scale + 1e-3)
      << "int8 vs ONNX Runtime: " << (int8 - ort).abs().max().item<double>() << " (logits up to " << scale << ")";
  EXPECT_GT(ort.argmax(1).eq(int8.argmax(1)).to(at::kFloat).mean().item<float>(), 0.7);
}

TEST(Quantize, BadRequestsAreNamed) {
  zoo::ModelOptions mo;
  ir::Graph g = zoo::build_model("lenet5", mo);
  EXPECT_EQ(test_support::error_of([&] { quantize::quantize(g, {}, random_batches(0, {4, 1, 28, 28})); }),
            "quantize: static mode needs calibration data; got no batch");
  ir::Graph g2 = zoo::build_model("lenet5", mo);
  quantize::QuantizeOptions o;
  o.exclude_nodes = {"conv9"};
  EXPECT_EQ(test_support::error_of([&] { quantize::quantize(g2, o, random_batches(1, {4, 1, 28, 28})); }),
            "--exclude: no node named 'conv9' in the model");
  quantize::quantize(g2, {}, random_batches(1, {4, 1, 28, 28}));
  std::string again = test_support::error_of([&] { quantize::quantize(g2, {}, random_batches(1, {4, 1, 28, 28})); });
  EXPECT_NE(again.find("the model is already quantized"), std::string::npos) << again;
  // A layer excluded by name or op type stays float.
  ir::Graph g3 = zoo::build_model("lenet5", mo);
  o.exclude_nodes = {"conv"};
  o.exclude_ops = {"Gemm"};
  quantize::QuantizeResult r = quantize::quantize(g3, o, random_batches(1, {4, 1, 28, 28}));
  for (const auto& l : r.layers) EXPECT_EQ(l.skipped.empty(), l.node == "conv1") << l.node;
  // NaN in calibration activations: named, not a NaN scale.
  ir::Graph g4 = zoo::build_model("lenet5", mo);
  std::string nan = test_support::error_of([&] {
    quantize::quantize(g4, {}, [n = 0](std::vector<at::Tensor>& in) mutable {
      in = {at::full({2, 1, 28, 28}, NAN)};
      return n++ < 1;
    });
  });
  EXPECT_NE(nan.find("has NaN or Inf in calibration batch"), std::string::npos) << nan;
}

// Dynamic quantization of the seed's 784-128-10 MLP against PyTorch's quantize_dynamic on
// the same weights, and the exported model (DynamicQuantizeLinear, MatMulInteger) in
// ONNX Runtime.
TEST(Quantize, DynamicMlpAgreesWithPyTorchQuantizeDynamicAndOnnxRuntime) {
  test_support::TempDir dir;
  zoo::ModelOptions mo;
  ir::Graph g = zoo::build_model("mlp", mo);
  std::string fp32 = dir.file("mlp.onnx");
  onnx_io::export_model(g, fp32);
  quantize::QuantizeOptions o;
  o.mode = "dynamic";
  o.per_channel = false;  // PyTorch's default dynamic qconfig: one scale per weight tensor
  quantize::QuantizeResult r = quantize::quantize(g, o, nullptr);
  for (const auto& l : r.layers) EXPECT_EQ(l.skipped, "") << l.node;
  std::string path = dir.file("mlp.dynamic.onnx");
  onnx_io::export_model(g, path);
  ir::Graph lowered = onnx_io::import_model(path);
  passes::make_pipeline("inference").run(lowered);
  EXPECT_EQ(count_ops(lowered, "Int8DynamicLinear"), 2);
  EXPECT_EQ(count_ops(lowered, "MatMulInteger"), 0);

  at::manual_seed(5);
  at::Tensor x = at::rand({2000, 1, 28, 28}) * 2 - 0.5;
  io::write_npy(dir.file("x.npy"), x);
  at::Tensor int8 = exec::run_once(lowered, {x})[0];
  std::ofstream(dir.file("ref.py")) << R"(import sys, numpy as np, onnx, torch
from onnx import numpy_helper
d = sys.argv[1]
m = onnx.load(d + "/mlp.onnx")
w = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in m.graph.initializer}
gemms = [n for n in m.graph.node if n.op_type == "Gemm"]
layers = []
for i, n in enumerate(gemms):
    W, b = w[n.input[1]], w[n.input[2]]
    if not any(a.name == "transB" and a.i == 1 for a in n.attribute): W = W.t()
    lin = torch.nn.Linear(W.shape[1], W.shape[0])
    lin.weight.data, lin.bias.data = W.contiguous(), b
    layers += [lin] + ([torch.nn.ReLU()] if i + 1 < len(gemms) else [])
net = torch.nn.Sequential(torch.nn.Flatten(), *layers).eval()
torch.backends.quantized.engine = "onednn"
q = torch.ao.quantization.quantize_dynamic(net, {torch.nn.Linear}, dtype=torch.qint8)
x = torch.from_numpy(np.load(d + "/x.npy"))
np.save(d + "/torch.npy", q(x).detach().numpy())
np.save(d + "/fp32.npy", net(x).detach().numpy())
)";
  auto run = test_support::run_command(test_support::python() + " " + dir.file("ref.py") + " " + dir.path);
  ASSERT_EQ(run.status, 0) << run.output;
  at::Tensor torch_int8 = io::read_npy(dir.file("torch.npy"));
  at::Tensor torch_fp32 = io::read_npy(dir.file("fp32.npy"));
  at::Tensor ort = test_support::run_onnxruntime(path, {x})[0];
  // A random network's logits are often nearly tied, and PyTorch quantizes activations to
  // 7 bits (reduce_range): compare the argmax where the float top-2 margin exceeds the
  // quantization noise (5% of the logit range); the logits themselves everywhere.
  at::Tensor top2 = std::get<0>(torch_fp32.topk(2, 1));
  at::Tensor clear = (top2.select(1, 0) - top2.select(1, 1)).gt(0.05 * torch_fp32.abs().max());
  auto agree = [&](const at::Tensor& a, const at::Tensor& b) {
    return a.argmax(1).eq(b.argmax(1)).index({clear}).to(at::kDouble).mean().item<double>();
  };
  double vs_torch = agree(int8, torch_int8), vs_ort = agree(int8, ort);
  std::printf("argmax agreement on %lld clear samples: PyTorch quantize_dynamic %.4f, ONNX Runtime %.4f, float %.4f; "
              "max |logit diff| vs PyTorch %.3g (logits up to %.3g)\n",
              static_cast<long long>(clear.sum().item<int64_t>()), vs_torch, vs_ort, agree(int8, torch_fp32),
              (int8 - torch_int8).abs().max().item<double>(), torch_fp32.abs().max().item<double>());
  EXPECT_GT(clear.sum().item<int64_t>(), 1000);
  EXPECT_GE(vs_torch, 0.995);
  EXPECT_GE(vs_ort, 0.995);
  EXPECT_LT((int8 - torch_int8).abs().max().item<double>(), 0.05 * torch_fp32.abs().max().item<double>());
}

// QAT: the fake-quantized graph computes what the QDQ graph computes, converts back to the
// same integers, passes gradients straight through inside the range (to the weights, and to
// the scales with LSQ), and training it moves the weights.
TEST(Quantize, FakeQuantGraphMatchesQdqAndTrains) {
  zoo::ModelOptions mo;
  ir::Graph g = zoo::build_model("lenet5", mo);
  quantize::quantize(g, {}, random_batches(2, {8, 1, 28, 28}));
  at::manual_seed(11);
  at::Tensor x = at::randn({16, 1, 28, 28});
  at::Tensor qdq = exec::run_once(g, {x})[0];
  ir::Graph twice = g.clone();

  EXPECT_EQ(quantize::to_fake_quant(g, /*learnable_scales=*/true), 8 + 5);  // activations + weights
  EXPECT_EQ(count_ops(g, "QuantizeLinear") + count_ops(g, "DequantizeLinear"), 0);
  at::Tensor fake = exec::run_once(g, {x})[0];
  EXPECT_TRUE(at::allclose(fake, qdq, 1e-5, 1e-5)) << (fake - qdq).abs().max().item<float>();

  // Gradients: weights and learnable scales get them.
  exec::Session train(g, {/*training=*/true});
  at::Tensor loss = train.run({x})[0].pow(2).mean();
  loss.backward();
  const ir::Node* conv = g.find_node("conv");
  const ir::Node* fq = conv->input(1)->producer;
  ASSERT_EQ(fq->op_type, "FakeQuant");
  const at::Tensor& w = g.initializer(fq->input(0)->name)->tensor;
  const at::Tensor& s = g.initializer(fq->input(1)->name)->tensor;
  ASSERT_TRUE(w.grad().defined());
  ASSERT_TRUE(s.grad().defined());
  EXPECT_GT(w.grad().abs().sum().item<double>(), 0);
  EXPECT_GT(s.grad().abs().sum().item<double>(), 0);

  // Back to QDQ without training: the same integers and outputs.
  quantize::from_fake_quant(g);
  EXPECT_EQ(count_ops(g, "FakeQuant"), 0);
  at::Tensor back = exec::run_once(g, {x})[0];
  EXPECT_TRUE(at::allclose(back, qdq, 1e-5, 1e-5)) << (back - qdq).abs().max().item<float>();
  const ir::Node* w_dq = g.find_node("conv")->input(1)->producer;
  const ir::Node* w_dq0 = twice.find_node("conv")->input(1)->producer;
  EXPECT_TRUE(g.initializer(w_dq->input(0)->name)->tensor.equal(twice.initializer(w_dq0->input(0)->name)->tensor));
  EXPECT_EQ(g.initializer(g.find_node("conv")->input(2)->producer->input(0)->name)->tensor.scalar_type(), at::kInt);
}

TEST(Quantize, FakeQuantPassesGradientsOnlyInsideTheRange) {
  ir::Graph g;
  ir::Value* x = g.add_input("x", ir::TensorType::of(at::kFloat, {5}));
  ir::Value* s = g.add_initializer("s", at::scalar_tensor(0.5f), ir::InitKind::Constant);
  ir::Value* z = g.add_initializer("z", at::scalar_tensor(2, at::kByte), ir::InitKind::Constant);
  ir::Attributes a;
  a.set("qmin", int64_t{0});
  a.set("qmax", int64_t{10});
  a.set("axis", int64_t{-1});
  ir::Node* fq = g.add_node("FakeQuant", {x, s, z}, {"y"}, a, "fq");
  fq->domain = "ai.shrink";
  g.add_output(fq->output(0));
  ops::infer_shapes(g);
  // Range: (0 - 2) * 0.5 = -1 .. (10 - 2) * 0.5 = 4.
  at::Tensor in = at::tensor({-3.0f, -0.9f, 0.26f, 3.9f, 9.0f}).requires_grad_(true);
  exec::Session session(g, {/*training=*/true});
  at::Tensor y = session.run({in})[0];
  EXPECT_TRUE(y.detach().equal(at::tensor({-1.0f, -1.0f, 0.5f, 4.0f, 4.0f}))) << y;
  y.sum().backward();
  EXPECT_TRUE(in.grad().equal(at::tensor({0.0f, 1.0f, 1.0f, 1.0f, 0.0f}))) << in.grad();
}

// The fallback keeps the most sensitive layers float until the drop is within the
// tolerance. Here "accuracy" falls by one point per int8 convolution in the graph shrink
// runs, so the convolutions are the sensitive layers and one of them must go back to float.
TEST(Quantize, SensitivityRanksLayersAndTheFallbackStopsAtTheTolerance) {
  zoo::ModelOptions mo;
  ir::Graph g = zoo::build_model("lenet5", mo);
  auto accuracy = [](const ir::Graph& graph) { return 1.0 - 0.01 * count_ops(graph, "Int8Conv"); };
  quantize::CalibrationSource calibration = [] { return random_batches(1, {8, 1, 28, 28}); };
  quantize::FallbackResult f = quantize::sensitivity_fallback(g, {}, calibration, accuracy, /*max_drop=*/1.0);
  EXPECT_DOUBLE_EQ(f.float_accuracy, 1.0);
  EXPECT_DOUBLE_EQ(f.quantized_accuracy, 0.98);
  ASSERT_EQ(f.layers.size(), 5u);
  EXPECT_EQ(f.layers[0].op, "Conv");
  EXPECT_EQ(f.layers[1].op, "Conv");
  EXPECT_DOUBLE_EQ(f.layers[0].accuracy, 0.99);
  EXPECT_DOUBLE_EQ(f.layers[2].accuracy, 0.98);
  ASSERT_EQ(f.kept_float.size(), 1u);
  EXPECT_EQ(f.kept_float[0], f.layers[0].node);
  EXPECT_DOUBLE_EQ(f.final_accuracy, 0.99);
  quantize::FallbackResult none = quantize::sensitivity_fallback(g, {}, calibration, accuracy, /*max_drop=*/0.0);
  EXPECT_EQ(none.kept_float.size(), 2u);  // within 0 points once both convolutions are float
  EXPECT_DOUBLE_EQ(none.final_accuracy, 1.0);
}

// Weight-only 4-bit (grouped, packed two per byte) and fp16 storage: the unpacking graph
// runs in ONNX Runtime and in shrink alike, and reconstructs each weight within half a step
// of its group's scale (fp16: exactly the float16 rounding).
TEST(Quantize, WeightOnlyInt4AndFp16RunInOnnxRuntimeAndReconstructTheWeights) {
  test_support::TempDir dir;
  zoo::ModelOptions mo;
  ir::Graph fp = zoo::build_model("mlp", mo);
  at::Tensor w = fp.initializer(fp.find_node("fc")->input(1)->name)->tensor.detach().clone();  // [128, 784], transB=1
  at::manual_seed(2);
  at::Tensor x = at::randn({2, 1, 28, 28});      // rows the int4 kernel takes
  at::Tensor many = at::randn({40, 1, 28, 28});  // more rows: unpacked once, then sgemm
  for (const std::string mode : {"int4", "fp16"}) {
    ir::Graph g = zoo::build_model("mlp", mo);
    quantize::QuantizeOptions o;
    o.mode = mode == "fp16" ? "fp16" : "weight-only";
    o.bits = 4;
    o.group_size = 16;
    quantize::QuantizeResult r = quantize::quantize(g, o, nullptr);
    for (const auto& l : r.layers) EXPECT_EQ(l.skipped, "") << mode << " " << l.node;
    std::string path = dir.file(mode + ".onnx");
    onnx_io::export_model(g, path);
    ir::Graph loaded = onnx_io::import_model(path);
    ir::Graph folded = loaded.clone();
    passes::make_pipeline("portable").run(folded);  // the unpacking folds to one float weight
    const ir::Node* fc = folded.find_node("fc");
    at::Tensor w2 = folded.initializer(fc->input(1)->name)->tensor;
    if (fc->attrs.get_int("transB", 0) == 0) w2 = w2.t();
    if (mode == "fp16") {
      EXPECT_TRUE(w2.equal(w.to(at::kHalf).to(at::kFloat)));
    } else {
      at::Tensor step = w.reshape({128, 49, 16}).abs().amax(2, true) / 7;
      at::Tensor err = (w2 - w).reshape({128, 49, 16}).abs();
      EXPECT_TRUE(err.le(step / 2 + 1e-6).all().item<bool>()) << (err - step / 2).max().item<float>();
      EXPECT_GT(err.max().item<float>(), 0);
    }
    // The runtime keeps the 4-bit codes: both layers (784 -> 128, and 128 -> 10 with a
    // partial column block) on the Int4MatMul kernel.
    passes::make_pipeline("inference").run(loaded);
    EXPECT_EQ(count_ops(loaded, "Int4MatMul"), mode == "int4" ? 2 : 0);
    for (const at::Tensor& in : {x, many}) {
      at::Tensor ours = exec::run_once(loaded, {in})[0];
      at::Tensor ort = test_support::run_onnxruntime(path, {in})[0];
      at::Tensor unpacked = exec::run_once(folded, {in})[0];
      EXPECT_TRUE(at::allclose(ours, ort, 1e-4, 1e-4)) << mode << ": " << (ours - ort).abs().max().item<float>();
      EXPECT_TRUE(at::allclose(ours, unpacked, 1e-4, 1e-4)) << mode << ": " << (ours - unpacked).abs().max().item<float>();
    }
  }
}

// Bias correction: with per-tensor weights dominated by an outlier, the weights' rounding
// moves the mean of each output by (W_q - W) E[x]; the corrected bias takes that back.
TEST(Quantize, BiasCorrectionRemovesTheMeanShiftOfRoundedWeights) {
  auto build = [] {
    ir::Graph g;
    ir::Value* x = g.add_input("x", ir::TensorType::of(at::kFloat, {ir::kDynamic, 64}));
    at::Generator gen = at::detail::createCPUGenerator(4);
    at::Tensor w = at::randn({16, 64}, gen) * 0.1;
    w[0][0] = 5.0;  // one outlier: a coarse per-tensor step
    ir::Value* W = g.add_initializer("W", w, ir::InitKind::Parameter);
    ir::Value* b = g.add_initializer("b", at::zeros({16}), ir::InitKind::Parameter);
    ir::Attributes a;
    a.set("transB", int64_t{1});
    g.add_output(g.add_node("Gemm", {x, W, b}, {"y"}, a, "fc")->output(0));
    ops::infer_shapes(g);
    return g;
  };
  auto data = [] {
    auto gen = std::make_shared<at::Generator>(at::detail::createCPUGenerator(9));
    auto left = std::make_shared<int>(8);
    return std::function<bool(std::vector<at::Tensor>&)>([=](std::vector<at::Tensor>& in) {
      if ((*left)-- <= 0) return false;
      in = {at::rand({64, 64}, *gen) + 1.0};
      return true;
    });
  };
  ir::Graph fp = build();
  at::Tensor x = at::rand({512, 64}, at::detail::createCPUGenerator(10)) + 1.0;
  at::Tensor y = exec::run_once(fp, {x})[0];
  double shift[2];
  for (int corrected = 0; corrected < 2; ++corrected) {
    ir::Graph g = build();
    quantize::QuantizeOptions o;
    o.per_channel = false;
    o.bias_correction = corrected;
    quantize::quantize(g, o, data());
    shift[corrected] = (exec::run_once(g, {x})[0] - y).mean(0).abs().mean().item<double>();
  }
  std::printf("mean output shift: %.4g uncorrected, %.4g corrected\n", shift[0], shift[1]);
  EXPECT_LT(shift[1], 0.2 * shift[0]);

  // The same through a grouped convolution (8 channels in 4 groups, no padding).
  auto conv = [] {
    ir::Graph g;
    ir::Value* x = g.add_input("x", ir::TensorType::of(at::kFloat, {ir::kDynamic, 8, 6, 6}));
    at::Tensor w = at::randn({8, 2, 3, 3}, at::detail::createCPUGenerator(5)) * 0.1;
    w[3][1][2][2] = 4.0;
    ir::Attributes a;
    a.set("group", int64_t{4});
    a.set("kernel_shape", std::vector<int64_t>{3, 3});
    ir::Value* W = g.add_initializer("W", w, ir::InitKind::Parameter);
    g.add_output(g.add_node("Conv", {x, W}, {"y"}, a, "conv")->output(0));  // no bias: correction adds one
    ops::infer_shapes(g);
    return g;
  };
  at::Generator cgen = at::detail::createCPUGenerator(12);
  at::Tensor xc = at::rand({64, 8, 6, 6}, cgen) + at::arange(8, at::kFloat).view({1, 8, 1, 1});
  ir::Graph cfp = conv();
  at::Tensor yc = exec::run_once(cfp, {xc})[0];
  for (int corrected = 0; corrected < 2; ++corrected) {
    ir::Graph g = conv();
    quantize::QuantizeOptions o;
    o.per_channel = false;
    o.bias_correction = corrected;
    quantize::quantize(g, o, [&, n = 0](std::vector<at::Tensor>& in) mutable {
      in = {xc.slice(0, 16 * n, 16 * n + 16)};
      return n++ < 4;
    });
    shift[corrected] = (exec::run_once(g, {xc})[0] - yc).mean(at::IntArrayRef{0, 2, 3}).abs().mean().item<double>();
  }
  std::printf("grouped conv, mean output shift: %.4g uncorrected, %.4g corrected\n", shift[0], shift[1]);
  EXPECT_LT(shift[1], 0.2 * shift[0]);
}

// Cross-layer equalization keeps the float function, balances each pair's channel ranges,
// and leaves pairs joined by a Clip (ReLU6) alone.
TEST(Quantize, EqualizationKeepsTheFunctionAndBalancesChannelRanges) {
  ir::Graph g;
  at::Generator gen = at::detail::createCPUGenerator(21);
  ir::Value* x = g.add_input("x", ir::TensorType::of(at::kFloat, {ir::kDynamic, 3, 8, 8}));
  auto conv = [&](ir::Value* in, int64_t out, int64_t cin, int64_t group, const std::string& name) {
    at::Tensor w = at::randn({out, cin / group, 3, 3}, gen) * (at::rand({out, 1, 1, 1}, gen) * 10 + 0.01);
    ir::Attributes a;
    a.set("kernel_shape", std::vector<int64_t>{3, 3});
    a.set("pads", std::vector<int64_t>{1, 1, 1, 1});
    a.set("group", group);
    ir::Value* W = g.add_initializer(name + ".w", w, ir::InitKind::Parameter);
    ir::Value* b = g.add_initializer(name + ".b", at::randn({out}, gen), ir::InitKind::Parameter);
    return g.add_node("Conv", {in, W, b}, {name + ".out"}, a, name)->output(0);
  };
  ir::Value* h = conv(x, 8, 3, 1, "c1");
  h = g.add_node("Relu", {h}, {"r1"}, {}, "relu1")->output(0);
  h = conv(h, 8, 8, 8, "dw");  // depthwise
  h = g.add_node("Relu", {h}, {"r2"}, {}, "relu2")->output(0);
  h = conv(h, 6, 8, 1, "c3");
  ir::Value* lo = g.add_initializer("lo", at::scalar_tensor(0.0f), ir::InitKind::Constant);
  ir::Value* hi = g.add_initializer("hi", at::scalar_tensor(6.0f), ir::InitKind::Constant);
  h = g.add_node("Clip", {h, lo, hi}, {"r3"}, {}, "relu6")->output(0);
  h = conv(h, 4, 6, 1, "c4");
  g.add_output(h);
  ops::infer_shapes(g);
  at::Tensor in = at::randn({2, 3, 8, 8}, gen);
  at::Tensor before = exec::run_once(g, {in})[0];
  at::Tensor c4 = g.initializer("c4.w")->tensor.clone();
  auto pairs = quantize::equalize_layers(g);
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[0], std::make_pair(std::string("c1"), std::string("dw")));
  EXPECT_EQ(pairs[1], std::make_pair(std::string("dw"), std::string("c3")));
  at::Tensor after = exec::run_once(g, {in})[0];
  EXPECT_TRUE(at::allclose(after, before, 1e-4, 1e-4)) << (after - before).abs().max().item<float>();
  EXPECT_TRUE(g.initializer("c4.w")->tensor.equal(c4));  // behind the Clip: untouched
  auto range = [](const at::Tensor& w, int64_t axis) { return w.abs().movedim(axis, 0).reshape({w.size(axis), -1}).amax(1); };
  // dw -> c3 (the last pair equalized): dw's output ranges equal c3's input ranges.
  EXPECT_TRUE(at::allclose(range(g.initializer("dw.w")->tensor, 0), range(g.initializer("c3.w")->tensor, 1), 1e-3, 1e-5));
}

// SmoothQuant on a LayerNorm whose output has three outlier channels (gamma 100), read by
// two linear layers (MatMul and Gemm with transB): smoothing alone leaves the float function
// unchanged, sets each channel's scale to the hand formula max|X|^a / max|W|^(1-a), and
// static int8 of the smoothed model errs far less than without it.
TEST(Quantize, SmoothQuantMovesActivationOutliersIntoTheWeights) {
  at::manual_seed(11);
  auto build = [] {
    ir::Graph g;
    ir::Value* x = g.add_input("x", ir::TensorType::of(at::kFloat, {-1, 16, 32}));
    at::Tensor gamma = at::rand({32}) + 0.5;
    gamma.index_put_({at::tensor({3, 17, 30}, at::kLong)}, 100.0);
    ir::Value* ln = g.add_node("LayerNormalization",
                               {x, g.add_initializer("gamma", gamma, ir::InitKind::Parameter),
                                g.add_initializer("beta", at::randn({32}) * 0.1, ir::InitKind::Parameter)},
                               {"ln"}, {}, "norm")
                        ->output(0);
    // The outlier channels' weight rows are small, as in the models SmoothQuant studies: they
    // set the activation range without carrying most of the output.
    at::Tensor rows = at::ones({32, 1});
    rows.index_put_({at::tensor({3, 17, 30}, at::kLong)}, 0.02);
    ir::Value* q = g.add_node("MatMul", {ln, g.add_initializer("wq", at::randn({32, 24}) * 0.2 * rows, ir::InitKind::Parameter)},
                              {"q"}, {}, "q")
                       ->output(0);
    ir::Attributes trans;
    trans.set("transB", int64_t{1});
    ir::Value* k = g.add_node("Gemm",
                              {g.add_node("Reshape", {ln, g.add_initializer("flat", at::tensor({-1, 32}, at::kLong),
                                                                             ir::InitKind::Constant)},
                                          {"flat_ln"})
                                   ->output(0),
                               g.add_initializer("wk", at::randn({24, 32}) * 0.2 * rows.t(), ir::InitKind::Parameter)},
                              {"k"}, trans, "k")
                       ->output(0);
    g.add_output(q);
    g.add_output(k);
    ops::infer_shapes(g);
    return g;
  };
  std::vector<at::Tensor> inputs;
  for (int i = 0; i < 4; ++i) inputs.push_back(at::randn({8, 16, 32}));
  auto batches = [&inputs] {
    auto at = std::make_shared<size_t>(0);
    return std::function<bool(std::vector<at::Tensor>&)>([&inputs, at](std::vector<at::Tensor>& b) {
      if (*at >= inputs.size()) return false;
      b = {inputs[(*at)++]};
      return true;
    });
  };
  at::Tensor probe = at::randn({8, 16, 32});
  // The norm also feeds a Reshape (to the Gemm): not smoothable, left alone.
  ir::Graph reshaped = build();
  EXPECT_TRUE(quantize::smooth_activations(reshaped, 0.5, batches()).empty());
  // Both readers direct: the Gemm becomes a second MatMul with its weight [32, 24].
  ir::Graph g = build();
  {
    ir::Node* k = g.find_node("k");
    g.replace_node(k, "MatMul", {g.find_node("norm")->output(0), g.value("wk")}, {});
    g.set_initializer_tensor("wk", g.initializer("wk")->tensor.t().contiguous());  // [32, 24]
    g.remove_node(g.value("flat_ln")->producer);
    g.remove_unused_values();
    ops::infer_shapes(g);
  }
  ir::Graph original = g.clone();
  std::vector<at::Tensor> want = exec::run_once(original, {probe});
  // The hand formula for channel 3 (an outlier) before smoothing.
  at::Tensor ranges;
  for (const at::Tensor& x : inputs) {
    at::Tensor y = at::layer_norm(x, {32}, g.initializer("gamma")->tensor, g.initializer("beta")->tensor, 1e-5);
    at::Tensor m = y.abs().reshape({-1, 32}).amax(0);
    ranges = ranges.defined() ? at::maximum(ranges, m) : m;
  }
  double w3 = std::max(g.initializer("wq")->tensor[3].abs().max().item<double>(),
                       g.initializer("wk")->tensor[3].abs().max().item<double>());
  double s3 = std::sqrt(ranges[3].item<double>()) / std::sqrt(w3);
  double gamma3 = g.initializer("gamma")->tensor[3].item<double>();

  std::vector<quantize::SmoothedNorm> smoothed = quantize::smooth_activations(g, 0.5, batches());
  ASSERT_EQ(smoothed.size(), 1u);
  EXPECT_EQ(smoothed[0].layers.size(), 2u);
  EXPECT_NEAR(g.initializer("gamma")->tensor[3].item<double>(), gamma3 / s3, 1e-4 * gamma3 / s3);
  std::vector<at::Tensor> same = exec::run_once(g, {probe});
  for (size_t i = 0; i < 2; ++i)
    EXPECT_LE((same[i] - want[i]).abs().max().item<double>(), 1e-4 * want[i].abs().max().item<double>()) << i;
  EXPECT_LT(smoothed[0].act_range_after, smoothed[0].act_range_before / 4);

  // Static int8 (per-tensor activations, per-channel weights) with and without smoothing.
  auto int8_error = [&](double alpha) {
    ir::Graph q = original.clone();
    quantize::QuantizeOptions o;
    o.smooth = alpha;
    quantize::quantize(q, o, batches());
    std::vector<at::Tensor> got = exec::run_once(q, {probe});
    return std::max((got[0] - want[0]).abs().max().item<double>() / want[0].abs().max().item<double>(),
                    (got[1] - want[1]).abs().max().item<double>() / want[1].abs().max().item<double>());
  };
  double plain = int8_error(-1), smooth = int8_error(0.5);
  std::printf("relative int8 error: plain %.4f, SmoothQuant alpha 0.5 %.4f\n", plain, smooth);
  EXPECT_LT(smooth, plain / 10);
  EXPECT_EQ(test_support::error_of([&] {
              ir::Graph q = original.clone();
              quantize::QuantizeOptions o;
              o.smooth = 0.5;
              quantize::quantize(q, o, nullptr);
            }),
            "--smooth: SmoothQuant needs calibration batches (the activations' ranges)");
}
