// IDX and CIFAR readers, the packaged Fashion-MNIST, and the loader.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <fstream>
#include <set>

#include "shrink/core/error.h"
#include "shrink/data/dataset.h"
#include "shrink/data/loader.h"
#include "support/onnx_builder.h"
#include "support/errors.h"
#include "support/paths.h"
#include "support/process.h"

using namespace shrink;
using test_support::error_of;

namespace {

std::string idx_bytes(const at::Tensor& t) {  // uint8 tensor -> IDX file contents
  std::string s = {0, 0, 0x08, static_cast<char>(t.dim())};
  for (int64_t d : t.sizes())
    for (int shift : {24, 16, 8, 0}) s.push_back(static_cast<char>((d >> shift) & 0xff));
  at::Tensor c = t.contiguous();
  s.append(static_cast<const char*>(c.data_ptr()), c.numel());
  return s;
}

void write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

data::Dataset synthetic(int64_t n) {
  data::Dataset d;
  d.name = "synthetic";
  d.images = at::arange(n * 4, at::kLong).remainder(256).to(at::kByte).view({n, 1, 2, 2});
  d.labels = at::arange(n, at::kLong).remainder(3);
  d.classes = 3;
  return d;
}

}  // namespace

TEST(Idx, ReadsGzipAndRawAndChecksThePair) {
  test_support::TempDir dir;
  at::Tensor images = at::randint(0, 256, {5, 3, 4}, at::kLong).to(at::kByte);
  at::Tensor labels = at::tensor({1, 0, 4, 2, 3}, at::kLong).to(at::kByte);
  write_gz(dir.file("img.gz"), idx_bytes(images));
  std::ofstream(dir.file("lab"), std::ios::binary) << idx_bytes(labels);
  data::Dataset d = data::load_idx_pair(dir.file("img.gz"), dir.file("lab"), "tiny");
  EXPECT_TRUE(at::equal(d.images, images.unsqueeze(1)));
  EXPECT_TRUE(at::equal(d.labels, labels.to(at::kLong)));
  EXPECT_EQ(d.classes, 5);

  std::ofstream(dir.file("bad_magic"), std::ios::binary) << std::string("\x01\x02\x08\x01\x00\x00\x00\x01z", 9);
  EXPECT_EQ(error_of([&] { data::read_idx(dir.file("bad_magic")); }), dir.file("bad_magic") + ": not an IDX file (bad magic number)");
  std::string full = idx_bytes(images);
  std::ofstream(dir.file("cut"), std::ios::binary) << full.substr(0, full.size() - 7);
  EXPECT_EQ(error_of([&] { data::read_idx(dir.file("cut")); }), dir.file("cut") + ": truncated data: 53 bytes, header says 60");
  std::ofstream(dir.file("lab3"), std::ios::binary) << idx_bytes(labels.slice(0, 0, 3));
  EXPECT_EQ(error_of([&] { data::load_idx_pair(dir.file("img.gz"), dir.file("lab3"), "x"); }),
            dir.file("lab3") + ": 3 labels for 5 images in " + dir.file("img.gz"));
  EXPECT_NE(error_of([&] { data::load_idx_dir(dir.path, true); }).find("no train-images-idx3-ubyte[.gz]"), std::string::npos);
}

TEST(Idx, PackagedFashionMnistAgreesWithPythonsReading) {
  data::Dataset train = data::load_idx_dir(data::default_data_dir(), true);
  data::Dataset test = data::load_idx_dir(data::default_data_dir(), false);
  EXPECT_EQ(train.images.sizes(), (std::vector<int64_t>{60000, 1, 28, 28}));
  EXPECT_EQ(test.size(), 10000);
  EXPECT_EQ(train.classes, 10);
  // An independent reading with Python's gzip and NumPy.
  test_support::TempDir dir;
  std::ofstream(dir.file("r.py")) << "import gzip, sys, numpy as np\n"
                                     "d = sys.argv[1]\n"
                                     "img = np.frombuffer(gzip.open(d + '/train-images-idx3-ubyte.gz').read()[16:], np.uint8)\n"
                                     "lab = np.frombuffer(gzip.open(d + '/train-labels-idx1-ubyte.gz').read()[8:], np.uint8)\n"
                                     "print(int(img.astype(np.int64).sum()), int(lab.astype(np.int64).sum()), int(lab[0]))\n";
  auto r = test_support::run_command(test_support::python() + " " + dir.file("r.py") + " " + data::default_data_dir());
  ASSERT_EQ(r.status, 0) << r.output;
  std::ostringstream ours;
  ours << train.images.to(at::kLong).sum().item<int64_t>() << " " << train.labels.sum().item<int64_t>() << " "
       << train.labels[0].item<int64_t>() << "\n";
  EXPECT_EQ(ours.str(), r.output);
}

TEST(Cifar, ReadsBinaryBatchesOfCifar10And100) {
  test_support::TempDir dir;
  auto record = [](int coarse, int fine, bool c100, uint8_t fill) {
    std::string r;
    if (c100) r.push_back(static_cast<char>(coarse));
    r.push_back(static_cast<char>(fine));
    r.append(3 * 32 * 32, static_cast<char>(fill));
    return r;
  };
  for (int i = 1; i <= 5; ++i)
    std::ofstream(dir.file("data_batch_" + std::to_string(i) + ".bin"), std::ios::binary) << record(0, i, false, i) + record(0, 9, false, 7);
  std::ofstream(dir.file("test_batch.bin"), std::ios::binary) << record(0, 3, false, 1);
  std::ofstream(dir.file("train.bin"), std::ios::binary) << record(5, 77, true, 2);
  data::Dataset c10 = data::load_cifar(dir.path, true, false);
  EXPECT_EQ(c10.images.sizes(), (std::vector<int64_t>{10, 3, 32, 32}));
  EXPECT_EQ(c10.labels[2].item<int64_t>(), 2);
  EXPECT_EQ(c10.images[2].max().item<int>(), 2);
  EXPECT_EQ(data::load_cifar(dir.path, false, false).labels[0].item<int64_t>(), 3);
  data::Dataset c100 = data::load_cifar(dir.path, true, true);
  EXPECT_EQ(c100.labels[0].item<int64_t>(), 77);  // the fine label
  EXPECT_EQ(c100.classes, 100);
  std::ofstream(dir.file("test.bin"), std::ios::binary) << "short";
  EXPECT_NE(error_of([&] { data::load_cifar(dir.path, false, true); }).find("is not a whole number of 3074-byte CIFAR records"),
            std::string::npos);
}

TEST(Loader, EveryEpochCoversEverySampleOnceInASeededOrder) {
  data::Dataset d = synthetic(103);
  data::LoaderOptions o;
  o.batch_size = 10;
  o.seed = 5;
  data::DataLoader loader(d, o);
  EXPECT_EQ(loader.batches_per_epoch(), 11);
  for (int64_t epoch : {0, 1}) {
    loader.start_epoch(epoch);
    std::multiset<int64_t> seen;
    data::Batch b;
    int64_t batches = 0;
    while (loader.next(b)) {
      ++batches;
      // Recover sample ids from pixel 0 (id*4 mod 256) and the label (id mod 3): unique for 103 ids.
      for (int64_t i = 0; i < b.labels.size(0); ++i) {
        int64_t p0 = static_cast<int64_t>(std::lround(b.images[i][0][0][0].item<double>() * 255.0));
        for (int64_t id = 0; id < 103; ++id)
          if (id * 4 % 256 == p0 && id % 3 == b.labels[i].item<int64_t>()) seen.insert(id);
      }
    }
    EXPECT_EQ(batches, 11);
    EXPECT_EQ(seen.size(), 103u);
    EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), 103u);
  }
  EXPECT_NE(loader.order(0), loader.order(1));
  data::DataLoader same(d, o);
  EXPECT_EQ(same.order(1), loader.order(1));
}

// Without augmentation a batch is its samples' pixels, x / 255 normalised per channel:
// the same as to_float on those samples, and one pixel by hand.
TEST(Loader, UnaugmentedBatchesAreTheNormalisedSamples) {
  at::Tensor images = at::randint(0, 256, {37, 3, 5, 4}, at::kLong).to(at::kByte);
  data::Dataset d;
  d.name = "rgb";
  d.images = images;
  d.labels = at::arange(37, at::kLong).remainder(10);
  d.classes = 10;
  data::LoaderOptions o;
  o.batch_size = 8;
  o.seed = 3;
  o.normalization.mean = {0.5, 0.25, 0.75};
  o.normalization.std = {0.2, 0.4, 0.1};
  data::DataLoader loader(d, o);
  loader.start_epoch(0);
  data::Batch b;
  int64_t seen = 0;
  while (loader.next(b)) {
    at::Tensor expected = data::to_float(images.index_select(0, b.samples), o.normalization);
    EXPECT_TRUE(at::allclose(b.images, expected, 1e-5, 1e-5)) << "batch " << b.index;
    int64_t id = b.samples[0].item<int64_t>();
    double hand = (images[id][2][4][3].item<int>() / 255.0 - 0.75) / 0.1;
    EXPECT_NEAR(b.images[0][2][4][3].item<double>(), hand, 1e-4);
    seen += b.samples.size(0);
  }
  EXPECT_EQ(seen, 37);
}

TEST(Loader, ResumingAtABatchReproducesTheAugmentedBatches) {
  data::Dataset d = synthetic(64);
  d.images = at::randint(0, 256, {64, 1, 8, 8}, at::kLong).to(at::kByte);
  data::LoaderOptions o;
  o.batch_size = 16;
  o.crop_padding = 2;
  o.horizontal_flip = true;
  data::DataLoader full(d, o), resumed(d, o);
  full.start_epoch(3);
  resumed.start_epoch(3, 2);
  data::Batch a, b;
  full.next(a);
  full.next(a);
  full.next(a);  // batch 2
  ASSERT_TRUE(resumed.next(b));
  EXPECT_EQ(b.index, 2);
  EXPECT_TRUE(at::equal(a.images, b.images));
  EXPECT_TRUE(at::equal(a.labels, b.labels));
}
