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

constexpr int64_t kPrefetchPerWorker = 2;

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

Normalization compute_normalization(const Dataset& d, int64_t samples, uint64_t seed) {
  if (!d.files) return compute_normalization(d);
  Dataset sample = random_subset(d, samples, seed);
  Dataset decoded;
  decoded.images = sample.gather([&] {
    std::vector<int64_t> ids(sample.size());
    std::iota(ids.begin(), ids.end(), 0);
    return ids;
  }());
  return compute_normalization(decoded);
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
  SHRINK_CHECK(options_.world >= 1 && options_.rank >= 0 && options_.rank < options_.world, "data shard ",
               options_.rank, " of ", options_.world, " does not exist");
  if (options_.workers <= 0)
    options_.workers = dataset_.files ? std::max(1, static_cast<int>(std::thread::hardware_concurrency())) : 1;
}

DataLoader::~DataLoader() { stop(); }

int64_t DataLoader::batches_per_epoch() const {
  const int64_t w = options_.world, shard = (dataset_.size() + w - 1) / w;
  return (shard + options_.batch_size - 1) / options_.batch_size;
}

std::vector<int64_t> DataLoader::order(int64_t epoch) const {
  std::vector<int64_t> idx(dataset_.size());
  std::iota(idx.begin(), idx.end(), 0);
  if (options_.shuffle) {
    std::mt19937_64 rng(mix(options_.seed, static_cast<uint64_t>(epoch)));
    std::shuffle(idx.begin(), idx.end(), rng);
  }
  if (options_.world > 1) {
    const int64_t w = options_.world, n = static_cast<int64_t>(idx.size()), padded = (n + w - 1) / w * w;
    std::vector<int64_t> shard;
    shard.reserve(padded / w);
    for (int64_t i = options_.rank; i < padded; i += w) shard.push_back(idx[i % n]);
    return shard;
  }
  return idx;
}

// Plain loops on purpose: this runs on the prefetch threads, and ATen's parallel ops
// there would compete with the training step's OpenMP threads for the cores.
Batch DataLoader::make_batch(int64_t epoch, int64_t index, const std::vector<int64_t>& order) const {
  int64_t begin = index * options_.batch_size;
  int64_t end = std::min<int64_t>(begin + options_.batch_size, static_cast<int64_t>(order.size()));
  int64_t n = end - begin;
  Batch b;
  b.index = index;
  b.samples = at::tensor(std::vector<int64_t>(order.begin() + begin, order.begin() + end), at::kLong);
  if (dataset_.labeled()) b.labels = dataset_.labels.index_select(0, b.samples);
  if (dataset_.raw()) {  // model-ready inputs: as they are
    b.images = dataset_.images.index_select(0, b.samples);
    return b;
  }
  std::vector<int64_t> shape = dataset_.sample_shape();
  int64_t c = shape[0], h = shape[1], w = shape[2];
  std::mt19937_64 rng(mix(mix(options_.seed, static_cast<uint64_t>(epoch)), static_cast<uint64_t>(index) + 1));
  bool augment = options_.crop_padding > 0 || options_.horizontal_flip;
  at::Tensor decoded;
  const uint8_t* src;
  if (dataset_.files) {  // decoded here, augmented as torchvision's RandomCrop + RandomHorizontalFlip
    decoded = at::empty({n, c, h, w}, at::kByte);
    for (int64_t i = 0; i < n; ++i)
      dataset_.files->read(order[begin + i], decoded.data_ptr<uint8_t>() + i * c * h * w, augment ? &rng : nullptr);
    src = decoded.data_ptr<uint8_t>();
  } else {
    src = dataset_.images.data_ptr<uint8_t>();
  }
  b.images = at::empty({n, c, h, w}, at::kFloat);
  float* dst = b.images.data_ptr<float>();
  std::vector<float> scale(c), shift(c);  // x / 255 normalised = x * scale + shift
  SHRINK_CHECK(static_cast<int64_t>(options_.normalization.mean.size()) == c &&
                   static_cast<int64_t>(options_.normalization.std.size()) == c,
               "normalization has ", options_.normalization.mean.size(), " channels, '", dataset_.name, "' has ", c);
  for (int64_t ch = 0; ch < c; ++ch) {
    scale[ch] = static_cast<float>(1.0 / (255.0 * options_.normalization.std.at(ch)));
    shift[ch] = static_cast<float>(-options_.normalization.mean.at(ch) / options_.normalization.std.at(ch));
  }
  bool shift_flip = augment && !dataset_.files;  // in memory: padded random crop and flip here
  std::uniform_int_distribution<int64_t> shift_dist(0, 2 * options_.crop_padding);
  std::bernoulli_distribution flip_dist(0.5);
  for (int64_t i = 0; i < n; ++i) {
    int64_t id = dataset_.files ? i : order[begin + i];
    int64_t dy = 0, dx = 0;
    bool flip = false;
    if (shift_flip) {
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
        const float a = scale[ch], bias = shift[ch];
        for (int64_t k = 0; k < h * w; ++k) to[k] = static_cast<float>(from[k]) * a + bias;
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
  if (options_.nhwc) b.images = b.images.permute({0, 2, 3, 1}).contiguous();
  return b;
}

void DataLoader::start_epoch(int64_t epoch, int64_t first) {
  stop();
  auto ord = std::make_shared<const std::vector<int64_t>>(order(epoch));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ready_.clear();
    next_make_ = next_take_ = first;
    end_ = batches_per_epoch();
    cancel_ = false;
    error_ = nullptr;
    running_ = options_.workers;
  }
  const int64_t window = kPrefetchPerWorker * options_.workers;
  for (int t = 0; t < options_.workers; ++t) {
    workers_.emplace_back([this, epoch, ord, window] {
      // One OpenMP thread here: a team of its own would spin on the cores training uses.
      at::internal::lazy_init_num_threads();
      omp_set_num_threads(1);
      while (true) {
        int64_t index;
        {
          std::unique_lock<std::mutex> lock(mutex_);
          cv_.wait(lock, [&] { return cancel_ || error_ || next_make_ >= end_ || next_make_ - next_take_ < window; });
          if (cancel_ || error_ || next_make_ >= end_) break;
          index = next_make_++;
        }
        try {
          Batch b = make_batch(epoch, index, *ord);
          std::lock_guard<std::mutex> lock(mutex_);
          ready_.emplace(index, std::move(b));
        } catch (...) {
          std::lock_guard<std::mutex> lock(mutex_);
          if (!error_) error_ = std::current_exception();
        }
        cv_.notify_all();
      }
      std::lock_guard<std::mutex> lock(mutex_);
      --running_;
      cv_.notify_all();
    });
  }
}

bool DataLoader::next(Batch& batch) {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [this] { return ready_.count(next_take_) || error_ || next_take_ >= end_ || running_ == 0; });
  if (error_) std::rethrow_exception(error_);
  auto it = ready_.find(next_take_);
  if (it == ready_.end()) return false;
  batch = std::move(it->second);
  ready_.erase(it);
  ++next_take_;
  cv_.notify_all();
  return true;
}

void DataLoader::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cancel_ = true;
    cv_.notify_all();
  }
  for (std::thread& t : workers_)
    if (t.joinable()) t.join();
  workers_.clear();
}

}  // namespace shrink::data
