#include "shrink/data/loader.h"

#include <ATen/Parallel.h>
#include <omp.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "shrink/core/error.h"

namespace shrink::data {
namespace {

constexpr size_t kPrefetch = 2;

uint64_t mix(uint64_t a, uint64_t b) {  // splitmix64 of a combined key
  uint64_t z = a * 0x9E3779B97F4A7C15ull + b + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

Normalization compute_normalization(const Dataset& d) {
  Normalization n;
  n.mean.clear();
  n.std.clear();
  at::Tensor x = d.images.to(at::kFloat).div_(255.0);
  for (int64_t c = 0; c < x.size(1); ++c) {
    at::Tensor ch = x.select(1, c);
    n.mean.push_back(ch.mean().item<double>());
    n.std.push_back(ch.std().item<double>());
  }
  return n;
}

at::Tensor to_float(const at::Tensor& images, const Normalization& n) {
  at::Tensor x = images.to(at::kFloat).div_(255.0);
  int64_t c = x.size(1);
  SHRINK_CHECK(static_cast<int64_t>(n.mean.size()) == c && static_cast<int64_t>(n.std.size()) == c,
               "normalization has ", n.mean.size(), " channels, images have ", c);
  at::Tensor mean = at::tensor(n.mean, at::kDouble).to(at::kFloat).view({1, c, 1, 1});
  at::Tensor std = at::tensor(n.std, at::kDouble).to(at::kFloat).view({1, c, 1, 1});
  return x.sub_(mean).div_(std);
}

DataLoader::DataLoader(const Dataset& dataset, LoaderOptions options) : dataset_(dataset), options_(std::move(options)) {
  SHRINK_CHECK(options_.batch_size > 0, "batch size must be positive");
  SHRINK_CHECK(dataset_.size() > 0, "dataset '", dataset_.name, "' is empty");
}

DataLoader::~DataLoader() { stop(); }

int64_t DataLoader::batches_per_epoch() const {
  return (dataset_.size() + options_.batch_size - 1) / options_.batch_size;
}

std::vector<int64_t> DataLoader::order(int64_t epoch) const {
  std::vector<int64_t> idx(dataset_.size());
  std::iota(idx.begin(), idx.end(), 0);
  if (options_.shuffle) {
    std::mt19937_64 rng(mix(options_.seed, static_cast<uint64_t>(epoch)));
    std::shuffle(idx.begin(), idx.end(), rng);
  }
  return idx;
}

// Plain loops on purpose: this runs on the prefetch thread, and ATen's parallel ops
// there would compete with the training step's OpenMP threads for the cores.
Batch DataLoader::make_batch(int64_t epoch, int64_t index, const std::vector<int64_t>& order) const {
  int64_t begin = index * options_.batch_size;
  int64_t end = std::min<int64_t>(begin + options_.batch_size, dataset_.size());
  int64_t n = end - begin, c = dataset_.images.size(1), h = dataset_.images.size(2), w = dataset_.images.size(3);
  const uint8_t* src = dataset_.images.data_ptr<uint8_t>();
  const int64_t* labels = dataset_.labels.data_ptr<int64_t>();
  Batch b;
  b.index = index;
  b.images = at::empty({n, c, h, w}, at::kFloat);
  b.labels = at::empty({n}, at::kLong);
  b.samples = at::tensor(std::vector<int64_t>(order.begin() + begin, order.begin() + end), at::kLong);
  float* dst = b.images.data_ptr<float>();
  int64_t* dst_labels = b.labels.data_ptr<int64_t>();
  std::vector<float> scale(c), shift(c);  // x / 255 normalised = x * scale + shift
  for (int64_t ch = 0; ch < c; ++ch) {
    scale[ch] = static_cast<float>(1.0 / (255.0 * options_.normalization.std.at(ch)));
    shift[ch] = static_cast<float>(-options_.normalization.mean.at(ch) / options_.normalization.std.at(ch));
  }
  bool augment = options_.crop_padding > 0 || options_.horizontal_flip;
  std::mt19937_64 rng(mix(mix(options_.seed, static_cast<uint64_t>(epoch)), static_cast<uint64_t>(index) + 1));
  std::uniform_int_distribution<int64_t> shift_dist(0, 2 * options_.crop_padding);
  std::bernoulli_distribution flip_dist(0.5);
  for (int64_t i = 0; i < n; ++i) {
    int64_t id = order[begin + i];
    dst_labels[i] = labels[id];
    int64_t dy = 0, dx = 0;
    bool flip = false;
    if (augment) {
      if (options_.crop_padding > 0) {
        dy = shift_dist(rng) - options_.crop_padding;
        dx = shift_dist(rng) - options_.crop_padding;
      }
      if (options_.horizontal_flip) flip = flip_dist(rng);
    }
    const uint8_t* img = src + id * c * h * w;
    float* out = dst + i * c * h * w;
    if (dy == 0 && dx == 0 && !flip) {  // a straight copy: contiguous, vectorised
      for (int64_t ch = 0; ch < c; ++ch) {
        const uint8_t* from = img + ch * h * w;
        float* to = out + ch * h * w;
        const float a = scale[ch], b = shift[ch];
        for (int64_t k = 0; k < h * w; ++k) to[k] = static_cast<float>(from[k]) * a + b;
      }
      continue;
    }
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          int64_t sy = y + dy, sx = (flip ? w - 1 - x : x) + dx;  // crop of the zero-padded image
          float v = (sy < 0 || sy >= h || sx < 0 || sx >= w) ? 0.0f : img[(ch * h + sy) * w + sx];
          out[(ch * h + y) * w + x] = v * scale[ch] + shift[ch];
        }
  }
  return b;
}

void DataLoader::start_epoch(int64_t epoch, int64_t first) {
  stop();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.clear();
    done_ = false;
    cancel_ = false;
    error_ = nullptr;
  }
  worker_ = std::thread([this, epoch, first] {
    // One OpenMP thread here: a team of its own would spin on the cores training uses.
    at::internal::lazy_init_num_threads();
    omp_set_num_threads(1);
    try {
      std::vector<int64_t> ord = order(epoch);
      for (int64_t i = first; i < batches_per_epoch(); ++i) {
        Batch b = make_batch(epoch, i, ord);
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [this] { return queue_.size() < kPrefetch || cancel_; });
        if (cancel_) break;
        queue_.push_back(std::move(b));
        cv_.notify_all();
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(mutex_);
    done_ = true;
    cv_.notify_all();
  });
}

bool DataLoader::next(Batch& batch) {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [this] { return !queue_.empty() || done_; });
  if (error_) std::rethrow_exception(error_);
  if (queue_.empty()) return false;
  batch = std::move(queue_.front());
  queue_.pop_front();
  cv_.notify_all();
  return true;
}

void DataLoader::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cancel_ = true;
    cv_.notify_all();
  }
  if (worker_.joinable()) worker_.join();
}

}  // namespace shrink::data
