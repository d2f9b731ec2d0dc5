// Small IDX datasets (MNIST's file layout) for tests that run the CLI on data of their own.
#pragma once
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace shrink::test_support {

// DIR (created)/{train,t10k}-{images-idx3,labels-idx1}-ubyte: `train` and `test` side x side images
// of random pixels over `classes` classes, class k brighter in rows of band k (so a small
// network learns something), seeded.
inline void write_idx_dataset(const std::string& dir, uint32_t train, uint32_t test, uint32_t side, int classes,
                              uint32_t seed) {
  std::filesystem::create_directories(dir);
  std::mt19937 rng(seed);
  auto write = [&](const std::string& prefix, uint32_t n) {
    std::string images = {0, 0, 0x08, 3}, labels = {0, 0, 0x08, 1};
    for (uint32_t d : {n, side, side})
      for (int shift : {24, 16, 8, 0}) images.push_back(static_cast<char>((d >> shift) & 0xff));
    for (int shift : {24, 16, 8, 0}) labels.push_back(static_cast<char>((n >> shift) & 0xff));
    const uint32_t band = side / static_cast<uint32_t>(classes);
    for (uint32_t i = 0; i < n; ++i) {
      const uint32_t k = rng() % static_cast<uint32_t>(classes);
      labels.push_back(static_cast<char>(k));
      for (uint32_t y = 0; y < side; ++y)
        for (uint32_t x = 0; x < side; ++x) {
          uint32_t v = rng() % 100;
          if (y / band == k && rng() % 3 != 0) v += 120;
          images.push_back(static_cast<char>(v));
        }
    }
    std::ofstream(dir + "/" + prefix + "-images-idx3-ubyte", std::ios::binary) << images;
    std::ofstream(dir + "/" + prefix + "-labels-idx1-ubyte", std::ios::binary) << labels;
  };
  write("train", train);
  write("t10k", test);
}

}  // namespace shrink::test_support
