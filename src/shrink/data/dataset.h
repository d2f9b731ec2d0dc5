// Datasets: images held in memory (IDX, CIFAR, NumPy), or image files decoded on
// demand in the loader's threads (an ImageFolder tree), or model-ready float inputs
// (NumPy float32) used as they are. Labels are optional: unlabeled data serves
// calibration, comparison with a reference model and distillation.
#pragma once
#include <ATen/core/Tensor.h>

#include <atomic>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "shrink/data/image.h"

namespace shrink {
struct Hasher;
}

namespace shrink::data {

// Image files read when a batch needs them: each decoded, converted to `channels`,
// resized (shorter side to `resize`, 0: none) and cropped to height x width (centre,
// or random with a flip when augmenting).
struct ImageFiles {
  std::vector<std::string> paths;
  Channels channels = Channels::kRgb;
  int64_t resize = 0, height = 0, width = 0;
  bool fast_decode = false;  // JPEG decoded at a reduced DCT scale when the resize allows
  int64_t channel_count() const { return channels == Channels::kGray ? 1 : 3; }
  // Sample i as channel_count() x height x width bytes at `out`. With `rng`: random
  // crop and horizontal flip (training augmentation).
  void read(int64_t i, uint8_t* out, std::mt19937_64* rng = nullptr) const;
  // A file whose channel count differs from the set's is converted and said once.
  mutable std::shared_ptr<std::atomic<bool>> converted_said = std::make_shared<std::atomic<bool>>(false);
};

struct Dataset {
  std::string name;
  at::Tensor images;  // in memory: uint8 [N, C, H, W] images, or float32 [N, ...] model inputs used as they are
  std::shared_ptr<const ImageFiles> files;  // or files decoded on demand (images undefined)
  at::Tensor labels;  // int64 [N]; undefined when the data has no labels
  int64_t classes = 0;
  std::vector<std::string> class_names;  // an image folder's class subfolders, in label order
  int64_t size() const;
  bool labeled() const { return labels.defined(); }
  // Float inputs the model takes as they are (no scaling, normalisation or layout change).
  bool raw() const { return images.defined() && images.scalar_type() != at::kByte; }
  // One sample's shape: [C, H, W] for images, the input's dims for raw data.
  std::vector<int64_t> sample_shape() const;
  // Samples `ids` (uint8 [n, C, H, W] decoded if need be; raw: float [n, ...]).
  at::Tensor gather(const std::vector<int64_t>& ids) const;
  // The dataset restricted to `ids`, in that order.
  Dataset subset(const std::vector<int64_t>& ids, const std::string& suffix) const;
};

// An IDX file (MNIST's format), gzip-compressed or raw. Errors name the file and
// what is wrong (magic number, truncation). Every declared size is checked against
// the bytes present before anything is allocated; gzip data may expand to at most
// kMaxDecompressedBytes, so a file of N bytes costs at most about
// N + 2 x min(kMaxDecompressedBytes, the data it really holds) of memory.
constexpr size_t kMaxDecompressedBytes = size_t{4} << 30;
at::Tensor read_idx(const std::string& path);
// The same from the (already decompressed) bytes of such a file.
at::Tensor parse_idx(const std::string& bytes, const std::string& label);
// Bytes as they are, or gunzipped when they start with gzip's magic.
std::string gunzip_if_gzip(std::string bytes, const std::string& label);

// One CIFAR binary batch file's records (CIFAR-100: coarse and fine label bytes).
struct CifarBatch {
  at::Tensor images;  // uint8 [n, 3, 32, 32]
  at::Tensor labels;  // int64 [n]
};
CifarBatch parse_cifar_batch(const std::string& bytes, const std::string& label, bool cifar100);

// An images/labels IDX pair checked against each other.
Dataset load_idx_pair(const std::string& images, const std::string& labels, const std::string& name);

// Where the embedded default data lives: $SHRINK_DATA if set, else the install
// location of Debian's dataset-fashion-mnist package.
std::string default_data_dir();

// MNIST-layout directory (train-images-idx3-ubyte[.gz], t10k-... ): Fashion-MNIST, MNIST, ...
Dataset load_idx_dir(const std::string& dir, bool train, const std::string& name = "fashion-mnist");

// CIFAR-10 / CIFAR-100 binary batches (data_batch_1..5.bin / test_batch.bin, or
// train.bin / test.bin with coarse+fine labels for CIFAR-100).
Dataset load_cifar(const std::string& dir, bool train, bool cifar100);

// Adds what `d` holds to a cache key: its name, and its images (in memory) or its
// files as they are now (paths, sizes, modification times) and how they are read.
// Labels are not included.
void fingerprint(Hasher& h, const Dataset& d);

// A split cut into (the rest, a seeded validation part of `samples`, at most a fifth),
// each part in the split's order: what `shrink train --holdout` leaves out of training
// and `shrink compress` scores candidates on.
std::pair<Dataset, Dataset> split_validation(const Dataset& d, int64_t samples, uint64_t seed);

// A seeded random subset of `samples` images (all when there are fewer), e.g. a
// validation set drawn from the training images.
Dataset random_subset(const Dataset& d, int64_t samples, uint64_t seed);

// By name: "fashion-mnist", "mnist" (IDX dirs), "cifar10", "cifar100".
Dataset load_dataset(const std::string& kind, const std::string& dir, bool train);

// How the user's data becomes model input, as torchvision's transforms say it.
struct Preprocess {
  int64_t resize = 0;  // shorter side (bilinear, antialiased); 0: none
  int64_t crop = 0;    // centre crop (random with augment in training); 0: the model's input size
  Channels channels = Channels::kAny;  // kAny: the model's channel count decides (3: rgb, 1: gray)
  bool nhwc = false;   // the model takes [N, H, W, C]
  // Decode JPEGs at 1/2, 1/4 or 1/8 scale when the resized image still gets enough
  // pixels (PIL's draft mode): much faster on large photos, no longer bit-comparable
  // with torchvision's full decode (within a few 8-bit levels).
  bool fast_decode = false;
};

// What the data is for: the model's input dims when known ([N, C, H, W] or
// [N, H, W, C]; -1 where dynamic; empty when there is no model yet).
struct DataRequest {
  std::string path;
  std::string kind = "auto";  // auto, fashion-mnist, mnist, cifar10, cifar100, folder, numpy
  bool train = false;
  Preprocess preprocess;
  std::vector<int64_t> model_input;
  double val_fraction = 0;  // a single split: this seeded fraction is the evaluation part, the rest trains
  uint64_t seed = 0;
};

// The kind `path` holds: an IDX directory, CIFAR batches, an image folder (split
// into train/ and val/ or test/, or a single split; class subfolders or images
// directly, which are then unlabeled), or a .npy/.npz file.
std::string detect_kind(const std::string& path);

// Any supported data, detected or forced (`kind`); errors name the path and what
// was expected. In-memory images are resized and cropped here as the request says.
Dataset load(const DataRequest& request);

}  // namespace shrink::data
