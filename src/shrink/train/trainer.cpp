#include "shrink/train/trainer.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/optim.h>
#include <torch/serialize.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

#include "shrink/core/atomic_file.h"
#include "shrink/core/error.h"
#include "shrink/core/parse.h"
#include "shrink/core/progress.h"
#include "shrink/dist/dist.h"
#include "shrink/exec/session.h"
#include "shrink/onnx/export.h"
#include "shrink/onnx/import.h"
#include "shrink/train/step.h"

namespace shrink::train {
namespace {

std::atomic<bool> interrupted{false};
void on_sigint(int) { interrupted = true; }

// SIGINT sets a flag the loop checks, for the life of this object.
struct InterruptGuard {
  void (*previous)(int);
  InterruptGuard() {
    interrupted = false;
    previous = std::signal(SIGINT, on_sigint);
  }
  ~InterruptGuard() { std::signal(SIGINT, previous); }
};

// Checked at import (onnx/import.cpp), so these parse.
std::vector<double> parse_csv(const std::string& s) { return parse_real_list(s, "metadata"); }

std::string to_csv(const std::vector<double>& v) {
  std::ostringstream out;
  out << std::setprecision(9);
  for (size_t i = 0; i < v.size(); ++i) out << (i ? "," : "") << v[i];
  return out.str();
}

// Float initializers with one of `kinds`, in a fixed order (names are sorted).
// Parameters alone are what the optimizer steps; parameters plus buffers (BatchNorm
// statistics) are what keep-best must restore together.
std::vector<std::pair<std::string, at::Tensor>> tensors_of(const ir::Graph& g, std::initializer_list<ir::InitKind> kinds) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& [name, init] : g.initializers())
    if (init.tensor.is_floating_point() && std::find(kinds.begin(), kinds.end(), init.kind) != kinds.end())
      out.emplace_back(name, init.tensor);
  return out;
}

std::vector<std::pair<std::string, at::Tensor>> parameters(const ir::Graph& g) {
  return tensors_of(g, {ir::InitKind::Parameter});
}

std::vector<std::pair<std::string, at::Tensor>> model_state(const ir::Graph& g) {
  return tensors_of(g, {ir::InitKind::Parameter, ir::InitKind::Buffer});
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainOptions& o, std::vector<at::Tensor> params) {
  if (o.optimizer == "sgd")
    return std::make_unique<torch::optim::SGD>(
        params, torch::optim::SGDOptions(o.lr).momentum(o.momentum).nesterov(o.nesterov).weight_decay(o.weight_decay));
  if (o.optimizer == "adam")
    return std::make_unique<torch::optim::Adam>(params, torch::optim::AdamOptions(o.lr).weight_decay(o.weight_decay));
  if (o.optimizer == "adamw")
    return std::make_unique<torch::optim::AdamW>(params, torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay));
  fail("--optimizer: '", o.optimizer, "' is not one of sgd, adam, adamw");
}

at::Tensor bytes_tensor(const std::string& s) {
  at::Tensor t = at::empty({static_cast<int64_t>(s.size())}, at::kByte);
  std::memcpy(t.data_ptr(), s.data(), s.size());
  return t;
}

std::string tensor_bytes(const at::Tensor& t) {
  at::Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), c.numel());
}

struct Progress {  // where a run stands; what a checkpoint restores
  int epoch = 0;
  int64_t batch = 0;  // next batch of `epoch`
  double loss_sum = 0;
  int64_t correct = 0, seen = 0;
  TrainResult result;
  std::map<std::string, at::Tensor> best;  // keep-best copies of the parameters
};

nlohmann::json history_json(const TrainResult& r) {
  nlohmann::json h = nlohmann::json::array();
  for (const auto& e : r.history)
    h.push_back({{"epoch", e.epoch}, {"lr", e.lr}, {"train_loss", e.train_loss}, {"train_accuracy", e.train_accuracy},
                 {"test_loss", e.test_loss}, {"test_accuracy", e.test_accuracy}, {"seconds", e.seconds},
                 {"images_per_second", e.images_per_second}});
  return h;
}

void save_checkpoint(const std::string& path, const ir::Graph& g, torch::optim::Optimizer& opt, const Progress& p) {
  torch::serialize::OutputArchive archive;
  archive.write("model_onnx", bytes_tensor(onnx_io::export_model_bytes(g, {onnx_io::Storage::Dense, true})));
  torch::serialize::OutputArchive opt_archive;
  opt.save(opt_archive);
  archive.write("optimizer", opt_archive);
  nlohmann::json state = {{"epoch", p.epoch}, {"batch", p.batch}, {"loss_sum", p.loss_sum}, {"correct", p.correct},
                          {"seen", p.seen}, {"best_accuracy", p.result.best_accuracy},
                          {"best_epoch", p.result.best_epoch}, {"history", history_json(p.result)}};
  archive.write("state", bytes_tensor(state.dump()));
  archive.write("rng", at::detail::getDefaultCPUGenerator().get_state());
  torch::serialize::OutputArchive best;
  for (const auto& [name, t] : p.best) best.write(name, t);
  archive.write("best", best);
  std::ostringstream bytes;
  archive.save_to(bytes);
  write_file_atomically(path, bytes.str());
}

void load_checkpoint(const std::string& path, ir::Graph& g, torch::optim::Optimizer& opt, Progress& p) {
  torch::serialize::InputArchive archive;
  archive.load_from(path);
  torch::serialize::InputArchive opt_archive;
  archive.read("optimizer", opt_archive);
  opt.load(opt_archive);
  at::Tensor state_bytes, rng;
  archive.read("state", state_bytes);
  archive.read("rng", rng);
  nlohmann::json state = nlohmann::json::parse(tensor_bytes(state_bytes));
  p.epoch = state["epoch"];
  p.batch = state["batch"];
  p.loss_sum = state["loss_sum"];
  p.correct = state["correct"];
  p.seen = state["seen"];
  p.result.best_accuracy = state["best_accuracy"];
  p.result.best_epoch = state["best_epoch"];
  for (const auto& e : state["history"])
    p.result.history.push_back({e["epoch"], e["lr"], e["train_loss"], e["train_accuracy"], e["test_loss"],
                                e["test_accuracy"], e["seconds"], e["images_per_second"]});
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  generator.set_state(rng);
  torch::serialize::InputArchive best;
  archive.read("best", best);
  for (const auto& [name, t] : model_state(g)) {
    at::Tensor b;
    if (best.try_read(name, b)) p.best[name] = b;
  }
}

}  // namespace

data::Normalization normalization_for(const ir::Graph& graph, const data::Dataset& train) {
  auto mean = graph.metadata.find("shrink.input_mean"), std = graph.metadata.find("shrink.input_std");
  if (mean != graph.metadata.end() && std != graph.metadata.end())
    return data::Normalization{parse_csv(mean->second), parse_csv(std->second)};
  if (train.raw()) return {};  // model-ready inputs: not normalised
  return data::compute_normalization(train, 2048, 0);
}

void store_normalization(ir::Graph& graph, const data::Normalization& n) {
  graph.metadata["shrink.input_mean"] = to_csv(n.mean);
  graph.metadata["shrink.input_std"] = to_csv(n.std);
}

data::Preprocess preprocess_of(const ir::Graph& graph) {
  data::Preprocess p;
  auto get = [&](const char* key) {
    auto it = graph.metadata.find(key);
    return it == graph.metadata.end() ? std::string() : it->second;
  };
  if (std::string v = get("shrink.resize"); !v.empty()) p.resize = parse_int(v, "metadata shrink.resize");
  if (std::string v = get("shrink.crop"); !v.empty()) p.crop = parse_int(v, "metadata shrink.crop");
  if (std::string v = get("shrink.channels"); !v.empty()) p.channels = data::parse_channels(v);
  p.nhwc = get("shrink.layout") == "nhwc";
  return p;
}

void store_preprocess(ir::Graph& graph, const data::Preprocess& p) {
  auto put = [&](const char* key, const std::string& v) {
    if (v.empty()) {
      graph.metadata.erase(key);
    } else {
      graph.metadata[key] = v;
    }
  };
  put("shrink.resize", p.resize > 0 ? std::to_string(p.resize) : "");
  put("shrink.crop", p.crop > 0 ? std::to_string(p.crop) : "");
  put("shrink.channels", data::channels_name(p.channels));
  put("shrink.layout", p.nhwc ? "nhwc" : "");
}

data::LoaderOptions loader_options_for(const ir::Graph& graph, const data::Dataset& data) {
  data::LoaderOptions lo;
  lo.normalization = normalization_for(graph, data);
  lo.nhwc = preprocess_of(graph).nhwc;
  return lo;
}

void check_input_fits(const ir::Graph& graph, const data::Dataset& data) {
  SHRINK_CHECK(graph.inputs().size() == 1, "model '", graph.name, "' has ", graph.inputs().size(),
               " inputs; shrink feeds models that take one input tensor");
  const ir::TensorType& t = graph.inputs()[0]->type;
  std::vector<int64_t> sample = data.sample_shape();
  std::string what;
  for (size_t i = 0; i < sample.size(); ++i) what += (i ? "x" : "") + std::to_string(sample[i]);
  if (!data.raw() && preprocess_of(graph).nhwc) std::rotate(sample.begin(), sample.begin() + 1, sample.end());
  bool ok = t.has_shape && t.rank() == static_cast<int64_t>(sample.size()) + 1 && t.dtype == at::kFloat;
  for (size_t i = 0; ok && i < sample.size(); ++i) ok = t.dims[i + 1] == ir::kDynamic || t.dims[i + 1] == sample[i];
  ok = ok && (t.dims[0] == ir::kDynamic || t.dims[0] > 0);
  SHRINK_CHECK(ok, "model input '", graph.inputs()[0]->name, "' is ", t.to_string(), " but '", data.name, "' has ",
               what, data.raw() ? " inputs" : " images");
}

namespace {

// Batches of `data` in order, as `graph` takes them (its normalisation and layout;
// a model with a fixed batch gets its last batch zero-padded), run through it: the
// outputs cut back to the batch's samples.
class Feeder {
 public:
  Feeder(const ir::Graph& graph, const data::Dataset& data, int64_t batch_size)
      : session_(graph), fixed_batch_(graph.inputs()[0]->type.dims[0]) {
    data::LoaderOptions lo = loader_options_for(graph, data);
    lo.batch_size = fixed_batch_ > 0 ? fixed_batch_ : batch_size;
    lo.shuffle = false;
    loader_ = std::make_unique<data::DataLoader>(data, lo);
    loader_->start_epoch(0);
  }
  bool next(std::vector<at::Tensor>& outputs, data::Batch& b) {
    if (!loader_->next(b)) return false;
    at::Tensor x = b.images;
    int64_t n = x.size(0);
    if (fixed_batch_ > 0 && n < fixed_batch_) {
      std::vector<int64_t> pad(2 * x.dim(), 0);
      pad.back() = fixed_batch_ - n;
      x = at::constant_pad_nd(x, pad, 0);
    }
    outputs = session_.run({x});
    for (at::Tensor& o : outputs)
      if (o.dim() > 0 && o.size(0) == x.size(0)) o = o.slice(0, 0, n);
    return true;
  }

 private:
  exec::Session session_;
  int64_t fixed_batch_;
  std::unique_ptr<data::DataLoader> loader_;
};

void for_each_batch(const ir::Graph& graph, const data::Dataset& data, int64_t batch_size,
                    const std::function<void(const std::vector<at::Tensor>&, const data::Batch&)>& visit) {
  Feeder feeder(graph, data, batch_size);
  std::vector<at::Tensor> outputs;
  data::Batch b;
  while (feeder.next(outputs, b)) visit(outputs, b);
}

// What an evaluation counts; summed over data-parallel ranks before it becomes figures.
struct EvalCounts {
  at::Tensor confusion;  // int64 [k, k]: [true][predicted]
  at::Tensor sums;       // double [4]: loss sum, top-5 hits, samples, seconds
  bool has_top5 = false;
};

EvalCounts count_eval(const ir::Graph& graph, const data::Dataset& data, int64_t batch_size) {
  check_input_fits(graph, data);
  SHRINK_CHECK(data.labeled(), "'", data.name,
               "' has no labels: accuracy needs them (compare with the original model instead: eval --reference)");
  const int64_t k = data.classes;
  EvalCounts c;
  c.confusion = at::zeros({k, k}, at::kLong);
  double loss_sum = 0;
  int64_t top5 = 0;
  auto start = std::chrono::steady_clock::now();
  for_each_batch(graph, data, batch_size, [&](const std::vector<at::Tensor>& outputs, const data::Batch& b) {
    const at::Tensor& logits = outputs[0];
    const at::Tensor& y = b.labels;
    SHRINK_CHECK(logits.dim() == 2 && logits.size(1) >= k, "model output ", logits.sizes(), " does not have ", k,
                 " class scores per sample ('", data.name, "' has ", k, " classes)");
    loss_sum += at::cross_entropy_loss(logits, y, {}, at::Reduction::Sum).item<double>();
    at::Tensor pred = logits.argmax(1);
    at::Tensor inside = pred.lt(k);  // a model with more outputs than the data has classes
    c.confusion.view(-1).index_add_(0, (y * k + pred).masked_select(inside), at::ones_like(y).masked_select(inside));
    if (logits.size(1) > 10) {
      c.has_top5 = true;
      top5 += std::get<1>(logits.topk(5, 1)).eq(y.unsqueeze(1)).any(1).sum().item<int64_t>();
    }
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  c.sums = at::tensor({loss_sum, static_cast<double>(top5), static_cast<double>(data.size()), seconds}, at::kDouble);
  return c;
}

// The figures of `c`; `labels` (all the samples counted) give each class's total.
EvalResult figures(const EvalCounts& c, const at::Tensor& labels) {
  const int64_t k = c.confusion.size(0);
  EvalResult r;
  const double samples = std::max(1.0, c.sums[2].item<double>());
  r.seconds = c.sums[3].item<double>();
  r.samples = static_cast<int64_t>(c.sums[2].item<double>());
  r.loss = c.sums[0].item<double>() / samples;
  r.accuracy = c.confusion.diag().sum().item<double>() / samples;
  r.top5_accuracy = c.has_top5 ? c.sums[1].item<double>() / samples : -1;
  r.confusion.assign(k, std::vector<int64_t>(k));
  at::Tensor per_class = at::bincount(labels, {}, k);
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t j = 0; j < k; ++j) r.confusion[i][j] = c.confusion[i][j].item<int64_t>();
    int64_t total = per_class[i].item<int64_t>();
    r.per_class_accuracy.push_back(total ? static_cast<double>(r.confusion[i][i]) / total : 0.0);
  }
  return r;
}

}  // namespace

EvalResult evaluate(const ir::Graph& graph, const data::Dataset& data, int64_t batch_size) {
  return figures(count_eval(graph, data, batch_size), data.labels);
}

Agreement compare(const ir::Graph& model, const ir::Graph& reference, const data::Dataset& data, int64_t batch_size) {
  check_input_fits(model, data);
  check_input_fits(reference, data);
  // The two run side by side on the same samples: batches of the same size (a model
  // with a fixed batch decides it).
  int64_t fm = model.inputs()[0]->type.dims[0], fr = reference.inputs()[0]->type.dims[0];
  SHRINK_CHECK(fm <= 0 || fr <= 0 || fm == fr, "the model takes batches of ", fm, ", the reference of ", fr,
               ": compare models with the same batch (or a dynamic one)");
  const int64_t batch = fm > 0 ? fm : fr > 0 ? fr : batch_size;
  Feeder mf(model, data, batch), rf(reference, data, batch);
  Agreement a;
  double agree = 0, positions = 0, kl_sum = 0, signal = 0, noise = 0;
  auto start = std::chrono::steady_clock::now();
  std::vector<at::Tensor> outputs, r;
  data::Batch mb, rb;
  while (mf.next(outputs, mb)) {
    SHRINK_CHECK(rf.next(r, rb), "the reference ran out of batches");
    SHRINK_CHECK(outputs.size() == r.size(), "the model has ", outputs.size(), " outputs, the reference ", r.size());
    for (size_t i = 0; i < r.size(); ++i) {
      SHRINK_CHECK(outputs[i].sizes() == r[i].sizes(), "output ", i, " is ", outputs[i].sizes(), " but the reference's is ",
                   r[i].sizes());
      at::Tensor m = outputs[i].to(at::kDouble), e = r[i].to(at::kDouble);
      signal += e.square().sum().item<double>();
      noise += (m - e).square().sum().item<double>();
    }
    // Scores: the first output; classes on axis 1 ([N, K], [N, K, H, W]), or the last of [N, T, K].
    at::Tensor m = outputs[0].to(at::kDouble), e = r[0].to(at::kDouble);
    if (m.dim() < 2 || !at::isFloatingType(outputs[0].scalar_type())) continue;
    int64_t axis = m.dim() == 3 ? 2 : 1;
    agree += m.argmax(axis).eq(e.argmax(axis)).sum().item<double>();
    positions += static_cast<double>(m.numel() / m.size(axis));
    at::Tensor lp = e.log_softmax(axis), lq = m.log_softmax(axis);
    kl_sum += (lp.exp() * (lp - lq)).sum().item<double>();
  }
  a.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  a.samples = data.size();
  a.agreement = positions > 0 ? agree / positions : -1;
  a.kl = positions > 0 ? kl_sum / positions : -1;
  a.snr_db = noise > 0 ? 10 * std::log10(signal / noise) : std::numeric_limits<double>::infinity();
  return a;
}

void for_each_gradient(const ir::Graph& graph, const data::Dataset& data, int64_t batches, int64_t batch_size,
                       uint64_t seed, const std::function<void(const std::map<std::string, at::Tensor>&)>& visit) {
  SHRINK_CHECK(batches > 0, "gradient batches must be positive, got ", batches);
  check_input_fits(graph, data);
  ir::Graph copy = graph.clone();
  std::vector<std::pair<std::string, at::Tensor>> named = parameters(copy);
  SHRINK_CHECK(!named.empty(), "model '", graph.name, "' has no trainable parameters");
  std::vector<at::Tensor> params;
  for (auto& [n, t] : named) params.push_back(t);
  data::LoaderOptions lo = loader_options_for(graph, data);
  lo.batch_size = batch_size;
  lo.seed = seed;
  data::DataLoader loader(data, lo);
  TrainStep step(copy, params, 1);
  // Unlabeled data: the model's own top-1 class (evaluation mode) stands for the label.
  std::unique_ptr<exec::Session> labeler;
  if (!data.labeled()) labeler = std::make_unique<exec::Session>(graph);
  const LossFn cross_entropy = [](const std::vector<at::Tensor>& outputs, const at::Tensor& labels, int64_t) {
    return at::cross_entropy_loss(outputs[0], labels);
  };
  int64_t done = 0;
  for (int64_t epoch = 0; done < batches; ++epoch) {
    loader.start_epoch(epoch);
    data::Batch batch;
    while (done < batches && loader.next(batch)) {
      at::Tensor labels = batch.labels;
      if (!labels.defined()) {
        at::NoGradGuard no_grad;
        labels = labeler->run({batch.images})[0].argmax(1);
      }
      step.run(batch.images, labels, cross_entropy);
      std::map<std::string, at::Tensor> grads;
      for (auto& [n, t] : named) grads[n] = t.grad();
      visit(grads);
      ++done;
    }
  }
}

namespace {

// Data-parallel evaluation: each rank scores a contiguous shard of the test set and the
// counts are summed, so every rank gets the whole set's figures (and takes the same
// keep-best decision); one process evaluates it all.
EvalResult evaluate_sharded(const ir::Graph& graph, const data::Dataset& test_set) {
  const dist::World& w = dist::world();
  if (!w.active() || test_set.size() < w.size) return evaluate(graph, test_set);
  const int64_t n = test_set.size();
  std::vector<int64_t> ids;
  for (int64_t i = n * w.rank / w.size; i < n * (w.rank + 1) / w.size; ++i) ids.push_back(i);
  EvalCounts c = count_eval(graph, test_set.subset(ids, ""), 256);
  dist::sum({c.confusion, c.sums});
  c.sums[3].div_(w.size);  // seconds: the ranks' mean
  return figures(c, test_set.labels);
}

}  // namespace

TrainResult train(ir::Graph& graph, const data::Dataset& train_set, const data::Dataset& test_set,
                  const TrainOptions& o) {
  validate_schedule(o.schedule);
  SHRINK_CHECK(o.epochs > 0, "--epochs must be positive");
  if (o.resume) {
    SHRINK_CHECK(!o.checkpoint.empty(), "--resume needs --checkpoint");
    graph = load_checkpoint_graph(o.checkpoint);
  }
  check_input_fits(graph, train_set);
  SHRINK_CHECK(train_set.labeled() || o.loss, "'", train_set.name,
               "' has no labels: training needs them (distillation from a teacher does not: shrink distill)");
  data::Normalization norm = normalization_for(graph, train_set);
  if (dist::world().active() && !norm.mean.empty()) {
    // Rank 0's statistics everywhere: a sum over images depends on the thread count,
    // which ranks on different machines need not share.
    std::vector<double> v = norm.mean;
    v.insert(v.end(), norm.std.begin(), norm.std.end());
    at::Tensor t = at::tensor(v, at::kDouble);
    dist::broadcast({t});
    for (size_t i = 0; i < norm.mean.size(); ++i) {
      norm.mean[i] = t[static_cast<int64_t>(i)].item<double>();
      norm.std[i] = t[static_cast<int64_t>(i + norm.mean.size())].item<double>();
    }
  }
  if (!train_set.raw()) store_normalization(graph, norm);

  at::manual_seed(o.seed);
  std::vector<std::pair<std::string, at::Tensor>> named = parameters(graph);
  SHRINK_CHECK(!named.empty(), "model '", graph.name, "' has no trainable parameters");
  std::vector<at::Tensor> params;
  for (auto& [n, t] : named) params.push_back(t);
  std::unique_ptr<torch::optim::Optimizer> optimizer = make_optimizer(o, params);

  Progress p;
  if (o.resume) load_checkpoint(o.checkpoint, graph, *optimizer, p);

  // Data-parallel (dist::init joined a group): rank 0's weights everywhere, each rank
  // a DistributedSampler shard of every epoch and its share of the global --batch,
  // gradients averaged after each step (PyTorch DDP's semantics).
  const dist::World& world = dist::world();
  if (world.active()) {
    SHRINK_CHECK(o.batch_size % world.size == 0, "--batch ", o.batch_size, " must be a multiple of the world size ",
                 world.size, " (it is the global batch, split evenly across the ranks)");
    std::vector<at::Tensor> state;
    for (auto& [name, t] : model_state(graph)) state.push_back(t);
    at::NoGradGuard no_grad;
    dist::broadcast(state);
  }
  const int64_t rank_batch = o.batch_size / world.size;
  const bool speaks = o.progress && world.rank == 0;
  p.result.world_size = world.size;

  data::LoaderOptions lo = loader_options_for(graph, train_set);
  lo.batch_size = rank_batch;
  lo.rank = world.rank;
  lo.world = world.size;
  lo.seed = o.seed;
  lo.crop_padding = o.crop_padding;
  lo.horizontal_flip = o.horizontal_flip;
  lo.normalization = norm;
  data::DataLoader loader(train_set, lo);
  int shards = o.shards > 0 ? o.shards : auto_shards(graph, at::get_num_threads(), rank_batch);
  int compute_threads = shards == 1 && o.shards == 0 ? auto_compute_threads(graph, at::get_num_threads()) : 0;
  TrainStep step(graph, params, shards, compute_threads);
  p.result.shards = shards;
  p.result.compute_threads = shards > 1 ? 1 : at::get_num_threads();
  const LossFn cross_entropy = [&](const std::vector<at::Tensor>& outputs, const at::Tensor& labels, int64_t begin) {
    if (o.loss) return o.loss(outputs, labels, begin);
    return at::cross_entropy_loss(outputs[0], labels, {}, at::Reduction::Mean, -100, o.label_smoothing);
  };
  SHRINK_CHECK(o.l1 >= 0 && o.l2 >= 0 && o.bn_l1 >= 0, "regularisation strengths must be non-negative");
  std::vector<at::Tensor> weights, bn_scales;  // what the regularisers act on
  for (const auto& node : graph.nodes()) {
    auto trained = [&](size_t slot) -> at::Tensor {
      ir::Value* v = node->input(slot);
      const ir::Initializer* init = v ? graph.initializer(v->name) : nullptr;
      if (init && init->kind == ir::InitKind::Parameter) return init->tensor;
      if (v && v->producer && v->producer->op_type == "Mul") {  // a soft pruning mask's weight
        const ir::Initializer* w = graph.initializer(v->producer->input(0)->name);
        if (w && w->kind == ir::InitKind::Parameter) return w->tensor;
      }
      return {};
    };
    const std::string& op = node->op_type;
    if (op == "Conv" || op == "ConvTranspose" || op == "Gemm" || op == "MatMul") {
      if (at::Tensor w = trained(1); w.defined()) weights.push_back(w);
    } else if (op == "BatchNormalization") {
      if (at::Tensor gamma = trained(1); gamma.defined()) bn_scales.push_back(gamma);
    }
  }
  auto regularize = [&] {
    if (o.l1 == 0 && o.l2 == 0 && o.bn_l1 == 0) return;
    at::NoGradGuard no_grad;
    for (auto& w : weights) {
      if (!w.grad().defined()) continue;
      if (o.l1 > 0) w.mutable_grad().add_(w.sign(), o.l1);
      if (o.l2 > 0) w.mutable_grad().add_(w, o.l2);
    }
    if (o.bn_l1 > 0)
      for (auto& gamma : bn_scales)
        if (gamma.grad().defined()) gamma.mutable_grad().add_(gamma.sign(), o.bn_l1);
  };
  InterruptGuard guard;
  int64_t steps_per_epoch = loader.batches_per_epoch();
  int64_t steps_this_run = 0;
  auto run_start = std::chrono::steady_clock::now();

  for (; p.epoch < o.epochs; ++p.epoch, p.batch = 0, p.loss_sum = 0, p.correct = 0, p.seen = 0) {
    ProgressBar bar("epoch " + std::to_string(p.epoch + 1) + "/" + std::to_string(o.epochs), steps_per_epoch,
                    "img", speaks);
    int64_t images_timed = 0;
    double lr = o.lr;
    loader.start_epoch(p.epoch, p.batch);
    data::Batch batch;
    auto waited_from = std::chrono::steady_clock::now();  // time blocked on the loader: the step not fed
    while (loader.next(batch)) {
      p.result.data_wait_seconds +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - waited_from).count();
      lr = learning_rate(o.schedule, o.lr, p.epoch + static_cast<double>(batch.index) / steps_per_epoch, o.epochs);
      for (auto& group : optimizer->param_groups()) group.options().set_lr(lr);
      if (o.before_step) o.before_step(batch);
      TrainStep::Result out = step.run(batch.images, batch.labels, cross_entropy);
      const at::Tensor& logits = out.logits;
      double loss_value = out.loss;
      SHRINK_CHECK(std::isfinite(loss_value), "training diverged at step ", p.epoch * steps_per_epoch + batch.index,
                   " (epoch ", p.epoch + 1, ", batch ", batch.index + 1, "): loss is ", loss_value,
                   "; lower --lr or check the data");
      bool stop_now = interrupted;
      if (world.active()) {
        const auto c0 = std::chrono::steady_clock::now();
        std::vector<at::Tensor> grads;
        for (const at::Tensor& t : params) grads.push_back(t.grad());
        // Ctrl-C reaches the ranks between different steps: the flag rides on the
        // all-reduce and only its reduced value decides (a signal landing after the
        // all-reduce waits for the next step), so all stop after the same step.
        at::Tensor stop = at::full({1}, stop_now ? 1.0 : 0.0, params[0].options().requires_grad(false));
        grads.push_back(stop);
        dist::average(grads);
        stop_now = stop.item<double>() > 0;
        p.result.comm_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count();
      }
      regularize();
      optimizer->step();
      if (o.after_step)
        o.after_step(p.epoch * steps_per_epoch + batch.index + 1,
                     p.epoch + static_cast<double>(batch.index + 1) / steps_per_epoch);
      int64_t n = batch.images.size(0);
      p.loss_sum += loss_value * n;
      if (batch.labels.defined()) p.correct += logits.argmax(1).eq(batch.labels).sum().item<int64_t>();
      p.seen += n;
      images_timed += n;
      p.batch = batch.index + 1;
      ++steps_this_run;
      p.result.steps = steps_this_run;
      std::ostringstream text;
      text << std::fixed << std::setprecision(4) << "loss " << p.loss_sum / p.seen;
      if (train_set.labeled()) text << " acc " << std::setprecision(2) << 100.0 * p.correct / p.seen << "%";
      bar.update(p.batch, images_timed, text.str());
      waited_from = std::chrono::steady_clock::now();
      if (!world.active()) stop_now = interrupted;
      if (stop_now || (o.stop_after_steps >= 0 && steps_this_run >= o.stop_after_steps)) {
        if (!o.checkpoint.empty() && world.rank == 0) save_checkpoint(o.checkpoint, graph, *optimizer, p);
        bar.finish("interrupted" + std::string(o.checkpoint.empty() ? "" : ", checkpoint saved to " + o.checkpoint));
        p.result.interrupted = true;
        graph.metadata["shrink.interrupted"] = "1";
        return p.result;
      }
    }
    if (world.active()) {  // rank 0's BatchNorm statistics everywhere, as DDP's buffer broadcast
      std::vector<at::Tensor> buffers;
      for (const auto& [name, init] : graph.initializers())
        if (init.kind == ir::InitKind::Buffer) buffers.push_back(init.tensor);
      at::NoGradGuard no_grad;
      dist::broadcast(buffers);
    }
    EvalResult test;
    if (o.score) {
      auto t0 = std::chrono::steady_clock::now();
      test.accuracy = o.score(graph);
      test.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    } else {
      test = evaluate_sharded(graph, test_set);
    }
    EpochStats e;
    e.epoch = p.epoch + 1;
    e.lr = lr;
    e.train_loss = p.loss_sum / std::max<int64_t>(1, p.seen);
    e.train_accuracy = static_cast<double>(p.correct) / std::max<int64_t>(1, p.seen);
    e.test_loss = test.loss;
    e.test_accuracy = test.accuracy;
    e.seconds = bar.elapsed_seconds();
    e.images_per_second = images_timed / std::max(1e-9, e.seconds - test.seconds);
    p.result.history.push_back(e);
    if (test.accuracy > p.result.best_accuracy) {
      p.result.best_accuracy = test.accuracy;
      p.result.best_epoch = e.epoch;
      if (o.keep_best)
        for (auto& [name, t] : model_state(graph)) p.best[name] = t.detach().clone();
    }
    std::ostringstream text;
    text << std::fixed << std::setprecision(4) << "loss " << e.train_loss << std::setprecision(2);
    if (train_set.labeled()) text << " train " << 100 * e.train_accuracy << "%";
    text << (o.score ? " score " : " test ") << 100 * e.test_accuracy << "% lr " << std::setprecision(5) << lr
         << " " << static_cast<int64_t>(e.images_per_second) << " img/s";
    bar.finish(text.str());
    if (o.after_epoch) o.after_epoch(e);
    if (!o.checkpoint.empty() && world.rank == 0) {
      Progress next = p;
      ++next.epoch, next.batch = 0, next.loss_sum = 0, next.correct = 0, next.seen = 0;
      save_checkpoint(o.checkpoint, graph, *optimizer, next);
    }
  }
  if (o.keep_best && !p.best.empty()) {
    at::NoGradGuard no_grad;
    for (auto& [name, t] : model_state(graph)) t.copy_(p.best.at(name));
  }
  p.result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
  return p.result;
}

ir::Graph load_checkpoint_graph(const std::string& path) {
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
  } catch (const std::exception& e) {
    fail(path, ": not a shrink checkpoint (", std::string(e.what()).substr(0, std::string(e.what()).find('\n')), ")");
  }
  at::Tensor bytes;
  SHRINK_CHECK(archive.try_read("model_onnx", bytes), path, ": not a shrink checkpoint (no model)");
  return onnx_io::import_model_bytes(tensor_bytes(bytes), path);
}

}  // namespace shrink::train
