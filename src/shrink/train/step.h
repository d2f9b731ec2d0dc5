// One training step's forward and backward, on one thread or split across threads.
//
// Small networks (LeNet, MLPs) leave cores idle under intra-op parallelism: their
// convolutions and GEMMs are too small to split well. For such graphs the step splits
// the batch into one shard per thread, runs each shard's forward and backward on its
// own thread with single-threaded kernels, and sums the shard gradients in a fixed
// order, each weighted by its share of the batch. The result equals the whole-batch
// gradient up to float summation order, and is the same on every run. Graphs whose
// training forward is not a function of the shard alone (BatchNormalization's batch
// statistics, Dropout's random masks) always run whole.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <vector>

#include "shrink/exec/session.h"
#include "shrink/ir/graph.h"

namespace shrink::train {

class ShardPool;

// Loss of one shard: the graph's outputs for it (logits first), its labels and the
// shard's first row in the batch. Reduced as a mean over the shard's samples.
using LossFn =
    std::function<at::Tensor(const std::vector<at::Tensor>& outputs, const at::Tensor& labels, int64_t begin)>;

// How many shards a batch of `batch` is split into with `threads` threads available:
// 1 when the graph has batch-coupled or random training ops or is large enough for
// intra-op parallelism to use the cores.
int auto_shards(const ir::Graph& graph, int threads, int64_t batch);

// Intra-op threads for a whole-batch step with `threads` cores: one fewer for small fully
// connected networks (under a million MACs per sample, no convolution), leaving a core to
// the loader's background thread. Their GEMMs gain little from a second thread and lose
// more when the loader preempts one of the team (measured on 2 cores: the MLP trains at
// 190-205k images/s on one thread, 130-145k on two); everything else uses `threads`.
int auto_compute_threads(const ir::Graph& graph, int threads);

class TrainStep {
 public:
  // `params` are the graph's trainable initializers; their .grad is set by step().
  // `compute_threads` > 0 sets the intra-op thread count of a whole-batch step for the
  // step's lifetime (see auto_compute_threads); 0 leaves the caller's.
  TrainStep(const ir::Graph& graph, std::vector<at::Tensor> params, int shards, int compute_threads = 0);
  ~TrainStep();
  TrainStep(const TrainStep&) = delete;
  TrainStep& operator=(const TrainStep&) = delete;

  struct Result {
    at::Tensor logits;  // the whole batch's, detached
    double loss = 0;    // mean over the batch
  };
  // Forward, loss and backward; leaves the gradient of the batch-mean loss in .grad.
  Result run(const at::Tensor& images, const at::Tensor& labels, const LossFn& loss);

  int shards() const { return static_cast<int>(sessions_.size()); }

 private:
  std::vector<std::unique_ptr<exec::Session>> sessions_;
  std::vector<at::Tensor> params_;
  std::shared_ptr<ShardPool> pool_;
  int caller_threads_ = 0;  // the caller's OpenMP thread count, restored on destruction
};

}  // namespace shrink::train
