#include "shrink/data/dataset.h"

#include <ATen/ATen.h>
#include <zlib.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "shrink/core/error.h"
#include "shrink/core/hash.h"
#include "shrink/data/image.h"

namespace fs = std::filesystem;

namespace shrink::data {
namespace {

std::string read_file(const std::string& path) {
  SHRINK_CHECK(fs::exists(path), path, ": file not found");
  SHRINK_CHECK(!fs::is_directory(path), path, ": is a directory (expected a data file)");
  std::ifstream in(path, std::ios::binary);
  SHRINK_CHECK(in, path, ": cannot open file");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

uint32_t big_endian(const std::string& s, size_t at) {
  return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) |
         (uint32_t(uint8_t(s[at + 2])) << 8) | uint32_t(uint8_t(s[at + 3]));
}

std::string find_file(const std::string& dir, const std::string& stem) {
  for (const char* ext : {".gz", ""}) {
    fs::path p = fs::path(dir) / (stem + ext);
    if (fs::exists(p)) return p.string();
  }
  fail(dir, ": no ", stem, "[.gz] (expected an MNIST-layout IDX directory; set --data or SHRINK_DATA)");
}

}  // namespace

std::string gunzip_if_gzip(std::string bytes, const std::string& label) {
  if (bytes.size() < 2 || static_cast<unsigned char>(bytes[0]) != 0x1f || static_cast<unsigned char>(bytes[1]) != 0x8b)
    return bytes;
  z_stream z{};
  SHRINK_CHECK(inflateInit2(&z, 16 + MAX_WBITS) == Z_OK, label, ": cannot start gzip decompression");
  z.next_in = reinterpret_cast<Bytef*>(bytes.data());
  z.avail_in = static_cast<uInt>(std::min<size_t>(bytes.size(), UINT32_MAX));
  std::string out;
  char buf[1 << 16];
  int status = Z_OK;
  while (status == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    status = inflate(&z, Z_NO_FLUSH);
    if (status != Z_OK && status != Z_STREAM_END) break;
    out.append(buf, sizeof buf - z.avail_out);
    if (out.size() > kMaxDecompressedBytes) {
      inflateEnd(&z);
      fail(label, ": gzip data expands beyond ", kMaxDecompressedBytes >> 30, " GiB (the limit for a data file)");
    }
    if (status == Z_OK && z.avail_in == 0 && z.avail_out != 0) status = Z_BUF_ERROR;  // input ended mid-stream
  }
  const char* reason = z.msg ? z.msg : "unexpected end of data";
  inflateEnd(&z);
  SHRINK_CHECK(status == Z_STREAM_END, label, ": corrupt or truncated gzip data (", reason, ")");
  return out;
}

at::Tensor read_idx(const std::string& path) { return parse_idx(gunzip_if_gzip(read_file(path), path), path); }

at::Tensor parse_idx(const std::string& bytes, const std::string& path) {
  SHRINK_CHECK(bytes.size() >= 4 && bytes[0] == 0 && bytes[1] == 0, path,
               ": not an IDX file (bad magic number)");
  uint8_t type = uint8_t(bytes[2]), rank = uint8_t(bytes[3]);
  SHRINK_CHECK(type == 0x08, path, ": IDX element type 0x", std::hex, int(type),
               " is not supported (expected 0x08, unsigned bytes)");
  SHRINK_CHECK(rank >= 1 && bytes.size() >= 4 + 4u * rank, path, ": truncated IDX header");
  SHRINK_CHECK(rank <= 8, path, ": IDX header declares ", int(rank), " dimensions (expected at most 8)");
  std::vector<int64_t> dims;
  int64_t count = 1;
  for (int i = 0; i < rank; ++i) {
    dims.push_back(big_endian(bytes, 4 + 4 * i));
    // Checked against the bytes present before anything is allocated (no overflow:
    // count stays <= the file size, dims are < 2^32).
    SHRINK_CHECK(dims.back() == 0 || count <= static_cast<int64_t>(bytes.size()) / dims.back(), path,
                 ": truncated data: the header declares more elements than the file's ", bytes.size(), " bytes");
    count *= dims.back();
  }
  size_t offset = 4 + 4u * rank;
  SHRINK_CHECK(bytes.size() - offset == static_cast<size_t>(count), path, ": truncated data: ",
               bytes.size() - offset, " bytes, header says ", count);
  at::Tensor t = at::empty(dims, at::kByte);
  if (count) std::memcpy(t.data_ptr(), bytes.data() + offset, count);  // an empty tensor has no data pointer
  return t;
}

Dataset load_idx_pair(const std::string& images_path, const std::string& labels_path, const std::string& name) {
  at::Tensor images = read_idx(images_path);
  at::Tensor labels = read_idx(labels_path);
  SHRINK_CHECK(images.dim() == 3 || images.dim() == 4, images_path, ": expected images [N,H,W], got rank ",
               images.dim());
  SHRINK_CHECK(labels.dim() == 1, labels_path, ": expected labels [N], got rank ", labels.dim());
  SHRINK_CHECK(images.size(0) == labels.size(0), labels_path, ": ", labels.size(0), " labels for ",
               images.size(0), " images in ", images_path);
  Dataset d;
  d.name = name;
  d.images = images.dim() == 3 ? images.unsqueeze(1) : images;
  d.labels = labels.to(at::kLong);
  d.classes = d.size() ? d.labels.max().item<int64_t>() + 1 : 0;
  return d;
}

std::string default_data_dir() {
  if (const char* env = std::getenv("SHRINK_DATA")) return env;
  return "/usr/share/datasets/fashion-mnist";  // Debian package dataset-fashion-mnist
}

Dataset load_idx_dir(const std::string& dir, bool train, const std::string& name) {
  std::string prefix = train ? "train" : "t10k";
  std::string images = find_file(dir, prefix + "-images-idx3-ubyte");
  std::string labels = find_file(dir, prefix + "-labels-idx1-ubyte");
  return load_idx_pair(images, labels, name + (train ? "/train" : "/test"));
}

CifarBatch parse_cifar_batch(const std::string& bytes, const std::string& f, bool cifar100) {
  const int64_t label_bytes = cifar100 ? 2 : 1, pixels = 3 * 32 * 32, record = label_bytes + pixels;
  SHRINK_CHECK(!bytes.empty() && bytes.size() % record == 0, f, ": size ", bytes.size(),
               " is not a whole number of ", record, "-byte CIFAR records");
  int64_t n = static_cast<int64_t>(bytes.size()) / record;
  at::Tensor raw = at::empty({n, record}, at::kByte);
  std::memcpy(raw.data_ptr(), bytes.data(), bytes.size());
  CifarBatch b;
  b.labels = raw.select(1, label_bytes - 1).to(at::kLong);  // CIFAR-100: the fine label
  b.images = raw.slice(1, label_bytes).reshape({n, 3, 32, 32}).clone();
  const int64_t classes = cifar100 ? 100 : 10;
  SHRINK_CHECK(b.labels.max().item<int64_t>() < classes, f, ": label ", b.labels.max().item<int64_t>(),
               " out of range (expected below ", classes, ")");
  return b;
}

Dataset load_cifar(const std::string& dir, bool train, bool cifar100) {
  std::vector<std::string> files;
  if (cifar100) {
    files.push_back((fs::path(dir) / (train ? "train.bin" : "test.bin")).string());
  } else if (train) {
    for (int i = 1; i <= 5; ++i) files.push_back((fs::path(dir) / ("data_batch_" + std::to_string(i) + ".bin")).string());
  } else {
    files.push_back((fs::path(dir) / "test_batch.bin").string());
  }
  std::vector<at::Tensor> images, labels;
  for (const std::string& f : files) {
    CifarBatch b = parse_cifar_batch(gunzip_if_gzip(read_file(f), f), f, cifar100);
    images.push_back(b.images);
    labels.push_back(b.labels);
  }
  Dataset d;
  d.name = std::string(cifar100 ? "cifar100" : "cifar10") + (train ? "/train" : "/test");
  d.images = at::cat(images);
  d.labels = at::cat(labels);
  d.classes = cifar100 ? 100 : 10;
  SHRINK_CHECK(d.labels.max().item<int64_t>() < d.classes, dir, ": label out of range for ", d.name);
  return d;
}

Dataset load_dataset(const std::string& kind, const std::string& dir, bool train) {
  if (kind == "fashion-mnist" || kind == "mnist") return load_idx_dir(dir, train, kind);
  if (kind == "cifar10") return load_cifar(dir, train, false);
  if (kind == "cifar100") return load_cifar(dir, train, true);
  fail("--dataset: '", kind, "' is not one of fashion-mnist, mnist, cifar10, cifar100");
}

void fingerprint(Hasher& h, const Dataset& d) {
  h.text(d.name);
  if (d.files) {  // the files as they are now, and how they are read
    for (const std::string& p : d.files->paths) {
      std::error_code ec;
      h.text(p);
      h.text(std::to_string(fs::file_size(p, ec)));
      h.text(std::to_string(fs::last_write_time(p, ec).time_since_epoch().count()));
    }
    h.text(std::to_string(d.files->resize) + "," + std::to_string(d.files->height) + "," +
           std::to_string(d.files->width) + "," + channels_name(d.files->channels));
  } else if (d.images.defined()) {
    at::Tensor c = d.images.contiguous();
    h.bytes(c.data_ptr(), c.numel() * c.element_size());
  }
}

std::pair<Dataset, Dataset> split_validation(const Dataset& d, int64_t samples, uint64_t seed) {
  const int64_t n = d.size();
  SHRINK_CHECK(n >= 2, d.name, ": ", n, " samples; a validation part needs at least 2");
  samples = std::min(samples, std::max<int64_t>(1, n / 5));
  at::Generator gen = at::detail::createCPUGenerator(seed ^ 0xc0ffee5eedull);
  at::Tensor perm = at::randperm(n, gen, at::kLong);
  at::Tensor val = std::get<0>(perm.slice(0, 0, samples).sort());
  at::Tensor fit = std::get<0>(perm.slice(0, samples).sort());
  auto ids = [](const at::Tensor& t) { return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel()); };
  return {d.subset(ids(fit), "[fit part]"), d.subset(ids(val), "[validation part]")};
}

Dataset random_subset(const Dataset& d, int64_t samples, uint64_t seed) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  at::Tensor idx = at::randperm(d.size(), gen, at::kLong).slice(0, 0, std::min(samples, d.size()));
  return d.subset(std::vector<int64_t>(idx.data_ptr<int64_t>(), idx.data_ptr<int64_t>() + idx.numel()), "/subset");
}

}  // namespace shrink::data
