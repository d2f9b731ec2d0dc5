// Trains a graph's parameters on a classification dataset: cross-entropy (with label
// smoothing), SGD / Adam / AdamW, per-step LR schedules, evaluation every epoch,
// keep-best, resumable checkpoints (model, optimizer, epoch, batch, RNG), SIGINT
// saving a checkpoint before exiting, and a stop naming the step on a NaN/Inf loss.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "shrink/data/dataset.h"
#include "shrink/data/loader.h"
#include "shrink/ir/graph.h"
#include "shrink/train/schedule.h"

namespace shrink::train {

struct EpochStats {
  int epoch = 0;
  double lr = 0, train_loss = 0, train_accuracy = 0, test_loss = 0, test_accuracy = 0;
  double seconds = 0, images_per_second = 0;
};

struct TrainOptions {
  int epochs = 10;
  int64_t batch_size = 128;
  std::string optimizer = "sgd";  // sgd, adam, adamw
  double lr = 0.05, momentum = 0.9, weight_decay = 5e-4;
  bool nesterov = false;
  ScheduleOptions schedule;
  double label_smoothing = 0.0;
  uint64_t seed = 0;
  int64_t crop_padding = 0;
  bool horizontal_flip = false;
  bool keep_best = true;
  std::string checkpoint;          // saved after every epoch and on interruption ("" = none)
  bool resume = false;             // continue from `checkpoint`
  bool progress = true;
  // Sparsity regularisation, added to the gradient of the loss: lambda * sign(w) (L1) and
  // lambda * w (L2, i.e. the gradient of lambda/2 * w^2) over Conv/Gemm/MatMul weights,
  // and lambda * sign(gamma) over BatchNorm scales (network slimming, Liu et al. 2017).
  double l1 = 0, l2 = 0, bn_l1 = 0;
  // Called after every optimizer step with the steps done so far and the position in
  // training in epochs (e.g. gradual pruning updating its masks).
  std::function<void(int64_t step, double epoch)> after_step;
  int shards = 0;                  // batch shards run on parallel threads (0 = choose, see step.h)
  // Replaces the cross-entropy (e.g. distillation): the loss of one shard from the graph's
  // outputs (logits first), the shard's labels and its first row in the batch; may run on
  // several threads at once (one per shard).
  std::function<at::Tensor(const std::vector<at::Tensor>& outputs, const at::Tensor& labels, int64_t begin)> loss;
  // Called with each batch before its step (e.g. to look up the teacher's outputs for it,
  // or to mix its images); the step trains on the batch as the call leaves it.
  std::function<void(data::Batch& batch)> before_step;
  // Called after each epoch's evaluation (and before its checkpoint) with that epoch's
  // figures (e.g. mutual learning keeping each student's best epoch separately).
  std::function<void(const EpochStats& epoch)> after_epoch;
  // Replaces the test-set accuracy of each epoch (e.g. agreement with a teacher when
  // the data has no labels): higher is better.
  std::function<double(const ir::Graph& graph)> score;
  int64_t stop_after_steps = -1;   // stop as if interrupted after this many steps (tests)
};

struct TrainResult {
  std::vector<EpochStats> history;
  double best_accuracy = 0;
  int best_epoch = -1;
  bool interrupted = false;
  double seconds = 0;
  double data_wait_seconds = 0;  // blocked waiting for the loader's next batch (this run)
  int shards = 1;  // batch shards per step (see step.h)
  int compute_threads = 1;  // intra-op threads of each shard's kernels (see auto_compute_threads)
  int world_size = 1;           // data-parallel ranks (dist::world())
  int64_t steps = 0;            // optimizer steps taken (this run)
  double comm_seconds = 0;      // waiting on the gradient all-reduce (this run, this rank)
};

struct EvalResult {
  double accuracy = 0, loss = 0;
  double top5_accuracy = -1;  // when the model gives more than 10 class scores (else -1)
  int64_t samples = 0;
  std::vector<double> per_class_accuracy;
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
  double seconds = 0;
};

// The normalisation a graph was trained with (metadata), or the dataset's own.
data::Normalization normalization_for(const ir::Graph& graph, const data::Dataset& train);
void store_normalization(ir::Graph& graph, const data::Normalization& n);

// The preprocessing a graph takes its images with (metadata shrink.resize, .crop,
// .channels, .layout; written by training and by every command that read data
// with such flags), and storing it.
data::Preprocess preprocess_of(const ir::Graph& graph);
void store_preprocess(ir::Graph& graph, const data::Preprocess& p);

// A loader's options for feeding `graph` from `data`: its normalisation and layout.
data::LoaderOptions loader_options_for(const ir::Graph& graph, const data::Dataset& data);

// How far a model's outputs are from a reference model's on the same inputs
// (e.g. a compressed model against its original; labels are not needed).
struct Agreement {
  double agreement = -1;  // fraction of positions where the top-1 class (argmax) is the reference's
  double kl = -1;         // mean KL(reference || model) of the softmax of the scores, per position
  double snr_db = 0;      // 10 log10(sum ref^2 / sum (model - ref)^2) over every output
  int64_t samples = 0;
  double seconds = 0;
};
// Scores are the first output: classes on axis 1 of [N, K] and [N, K, H, W]
// (segmentation), on the last axis of [N, T, K] (sequences).
Agreement compare(const ir::Graph& model, const ir::Graph& reference, const data::Dataset& data,
                  int64_t batch_size = 256);

// Checks the graph's input takes the dataset's images; error naming both shapes.
void check_input_fits(const ir::Graph& graph, const data::Dataset& data);

// Trains in place. With options.resume the graph is replaced by the checkpoint's.
TrainResult train(ir::Graph& graph, const data::Dataset& train_set, const data::Dataset& test_set,
                  const TrainOptions& options);

EvalResult evaluate(const ir::Graph& graph, const data::Dataset& data, int64_t batch_size = 256);

// Gradients of the batch-mean cross-entropy with respect to every parameter (by
// initializer name), on `batches` shuffled training batches: `visit` is called once per
// batch. Runs in training mode on a copy, so the graph's BatchNorm statistics are untouched.
void for_each_gradient(const ir::Graph& graph, const data::Dataset& data, int64_t batches, int64_t batch_size,
                       uint64_t seed, const std::function<void(const std::map<std::string, at::Tensor>&)>& visit);

// The graph stored in a checkpoint.
ir::Graph load_checkpoint_graph(const std::string& path);

}  // namespace shrink::train
