// Batches of a Dataset as normalised float tensors, shuffled per epoch, with random
// crop and horizontal flip, produced by background threads a few batches ahead
// (image files are decoded there, one batch per thread at a time). Order and
// augmentation depend only on (seed, epoch, batch index), not on the threads: a run
// resumed at any batch sees exactly what the uninterrupted run saw.
#pragma once
#include <ATen/core/Tensor.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "shrink/data/dataset.h"

namespace shrink::data {

struct Normalization {
  std::vector<double> mean{0.0}, std{1.0};  // per channel, on images scaled to [0, 1]
};

struct LoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = true;
  uint64_t seed = 0;
  int64_t crop_padding = 0;  // random crop after zero padding by this many pixels (0: off)
  bool horizontal_flip = false;  // image files: augmenting (either flag) is a random crop plus this flip
  Normalization normalization;
  bool nhwc = false;  // batches as [B, H, W, C] (the model's layout)
  int workers = 0;    // background threads; 0: one for in-memory data, one per core for image files
  // Data-parallel shard (PyTorch's DistributedSampler): each epoch's order padded to a
  // multiple of `world` by repeating its start, this rank reading positions rank,
  // rank + world, ...; batch_size is then the per-rank batch.
  int rank = 0, world = 1;
};

struct Batch {
  at::Tensor images;  // float32 [B, C, H, W] (or [B, H, W, C]), normalised; raw data as it is
  at::Tensor labels;  // int64 [B]; undefined for unlabeled data
  int64_t index = 0;  // position of the batch in its epoch
  at::Tensor samples; // int64 [B]: each image's index in the dataset
};

// Dataset statistics: per-channel mean and std of the images scaled to [0, 1].
Normalization compute_normalization(const Dataset& d);

// Dataset statistics of a seeded sample of at most `samples` images (image files).
Normalization compute_normalization(const Dataset& d, int64_t samples, uint64_t seed);

// Turns uint8 images into normalised float (no augmentation).
at::Tensor to_float(const at::Tensor& images, const Normalization& n);

class DataLoader {
 public:
  DataLoader(const Dataset& dataset, LoaderOptions options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  int64_t batches_per_epoch() const;
  int workers() const { return options_.workers; }  // the background threads (resolved)
  // Starts producing the batches of `epoch`, beginning at batch `first`.
  void start_epoch(int64_t epoch, int64_t first = 0);
  // Next batch of the epoch; false at its end.
  bool next(Batch& batch);
  // The sample order of an epoch (exposed for tests).
  std::vector<int64_t> order(int64_t epoch) const;

 private:
  Batch make_batch(int64_t epoch, int64_t index, const std::vector<int64_t>& order) const;
  void stop();

  const Dataset& dataset_;
  LoaderOptions options_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::map<int64_t, Batch> ready_;  // made batches by index, handed out in order
  int64_t next_make_ = 0, next_take_ = 0, end_ = 0, running_ = 0;
  bool cancel_ = false;
  std::exception_ptr error_;
};

}  // namespace shrink::data
