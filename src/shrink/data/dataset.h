// Image classification datasets held in memory: uint8 images [N,C,H,W], int64 labels.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

namespace shrink::data {

struct Dataset {
  std::string name;
  at::Tensor images;  // uint8 [N, C, H, W]
  at::Tensor labels;  // int64 [N]
  int64_t classes = 0;
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
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

// A seeded random subset of `samples` images (all when there are fewer), e.g. a
// validation set drawn from the training images.
Dataset random_subset(const Dataset& d, int64_t samples, uint64_t seed);

// By name: "fashion-mnist", "mnist" (IDX dirs), "cifar10", "cifar100".
Dataset load_dataset(const std::string& kind, const std::string& dir, bool train);

}  // namespace shrink::data
