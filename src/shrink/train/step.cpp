#include "shrink/train/step.h"

#include <ATen/Parallel.h>
#include <omp.h>
#include <torch/csrc/autograd/autograd.h>

#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

#include "shrink/core/error.h"
#include "shrink/report/model_stats.h"

namespace shrink::train {

// Persistent threads, each with single-threaded kernels (its own OpenMP context sized 1,
// so oneDNN and OpenBLAS plan for one thread), running one shard each per step.
class ShardPool {
 public:
  explicit ShardPool(int n) {
    for (int i = 0; i < n; ++i) threads_.emplace_back([this, i] { loop(i); });
  }
  ~ShardPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void run(int shards, const std::function<void(int)>& work) {
    std::unique_lock<std::mutex> lock(mutex_);
    work_ = &work;
    active_ = shards;
    pending_ = shards;
    ++generation_;
    wake_.notify_all();
    done_.wait(lock, [&] { return pending_ == 0; });
    work_ = nullptr;
  }

 private:
  void loop(int index) {
    at::internal::lazy_init_num_threads();
    omp_set_num_threads(1);
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      if (index >= active_) continue;
      const std::function<void(int)>* work = work_;
      lock.unlock();
      (*work)(index);
      lock.lock();
      if (--pending_ == 0) done_.notify_all();
    }
  }
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int)>* work_ = nullptr;
  int active_ = 0, pending_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

int auto_shards(const ir::Graph& graph, int threads, int64_t batch) {
  if (threads < 2) return 1;
  bool has_conv = false;
  for (const auto& node : graph.nodes()) {
    has_conv = has_conv || node->op_type == "Conv";
    if (node->op_type == "BatchNormalization" || node->op_type == "Dropout" || node->op_type.rfind("Random", 0) == 0)
      return 1;
  }
  // GEMM-only networks already split well across cores (measured: the MLP trains 0.8x as
  // fast sharded); small convolutions do not.
  if (!has_conv) return 1;
  // Above a few million MACs per sample the kernels themselves split well across cores
  // (measured: ResNet-20 at 31 M trains faster whole; LeNet-5 at 0.4 M faster sharded).
  constexpr double kSmallModelMacs = 4e6;
  if (report::model_stats(graph).macs > kSmallModelMacs) return 1;
  int shards = threads;
  while (shards > 1 && batch / shards < 16) --shards;  // keep shards big enough to be worth a thread
  return shards;
}

int auto_compute_threads(const ir::Graph& graph, int threads) {
  if (threads < 2) return std::max(1, threads);
  for (const auto& node : graph.nodes())
    if (node->op_type == "Conv" || node->op_type == "ConvTranspose") return threads;
  constexpr double kSmallDenseMacs = 1e6;
  return report::model_stats(graph).macs < kSmallDenseMacs ? threads - 1 : threads;
}

TrainStep::TrainStep(const ir::Graph& graph, std::vector<at::Tensor> params, int shards, int compute_threads)
    : params_(std::move(params)) {
  SHRINK_CHECK(shards >= 1, "shard count must be positive, got ", shards);
  SHRINK_CHECK(compute_threads >= 0, "thread count must not be negative, got ", compute_threads);
  if (shards == 1 && compute_threads > 0 && compute_threads != omp_get_max_threads()) {
    caller_threads_ = omp_get_max_threads();
    omp_set_num_threads(compute_threads);
  }
  if (shards > 1) {
    pool_ = std::make_shared<ShardPool>(shards);
    // The caller's own OpenMP team would spin between steps, taking the cores the
    // shards need: while sharding, its remaining work (optimizer step) runs on one thread.
    caller_threads_ = omp_get_max_threads();
    omp_set_num_threads(1);
  }
  for (int i = 0; i < shards; ++i) sessions_.push_back(std::make_unique<exec::Session>(graph, exec::SessionOptions{true, {}}));
}

TrainStep::~TrainStep() {
  if (caller_threads_ > 0) omp_set_num_threads(caller_threads_);
}

TrainStep::Result TrainStep::run(const at::Tensor& images, const at::Tensor& labels, const LossFn& loss_fn) {
  const int64_t n = images.size(0);
  const int shards = static_cast<int>(std::min<int64_t>(sessions_.size(), n));
  std::vector<int64_t> begin(shards + 1);
  for (int s = 0; s <= shards; ++s) begin[s] = n * s / shards;
  std::vector<at::Tensor> logits(shards), losses(shards);
  std::vector<std::vector<at::Tensor>> grads(shards);
  std::vector<std::exception_ptr> errors(shards);

  std::function<void(int)> shard_step = [&](int s) {
    try {
      at::Tensor x = shards == 1 ? images : images.slice(0, begin[s], begin[s + 1]);
      at::Tensor y = shards == 1 || !labels.defined() ? labels : labels.slice(0, begin[s], begin[s + 1]);
      std::vector<at::Tensor> outputs = sessions_[s]->run({x});
      logits[s] = outputs[0];
      double weight = static_cast<double>(begin[s + 1] - begin[s]) / n;
      at::Tensor l = loss_fn(outputs, y, begin[s]);
      losses[s] = l.detach() * weight;
      grads[s] = torch::autograd::grad({shards == 1 ? l : l * weight}, params_, {}, false, false, /*allow_unused=*/true);
      logits[s] = logits[s].detach();
    } catch (...) {
      errors[s] = std::current_exception();
    }
  };
  if (shards == 1) {
    shard_step(0);
  } else {
    pool_->run(shards, shard_step);
  }
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);

  for (size_t p = 0; p < params_.size(); ++p) {
    at::Tensor g;
    for (int s = 0; s < shards; ++s) {  // fixed order: the same sum every run
      if (!grads[s][p].defined()) continue;
      g = g.defined() ? g.add_(grads[s][p]) : grads[s][p];
    }
    params_[p].mutable_grad() = g.defined() ? g : at::zeros_like(params_[p]);
  }
  Result r;
  r.logits = shards == 1 ? logits[0] : at::cat(logits);
  at::Tensor total = losses[0];
  for (int s = 1; s < shards; ++s) total = total + losses[s];
  r.loss = total.item<double>();
  return r;
}

}  // namespace shrink::train
