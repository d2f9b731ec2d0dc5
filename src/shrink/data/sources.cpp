// The user's data: image folders, NumPy files, and detection of what a path holds.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>

#include "shrink/core/error.h"
#include "shrink/data/dataset.h"
#include "shrink/io/npy.h"
#include "shrink/io/npz.h"

namespace fs = std::filesystem;

namespace shrink::data {
namespace {

bool hidden(const fs::path& p) { return !p.filename().empty() && p.filename().string()[0] == '.'; }

// Image files under `dir` (recursively, symlinks followed), sorted.
std::vector<std::string> images_under(const fs::path& dir, bool recursive) {
  std::vector<std::string> out;
  std::error_code ec;
  auto visit = [&](const fs::directory_entry& e) {
    if (!hidden(e.path()) && e.is_regular_file(ec) && is_image_file(e.path().string())) out.push_back(e.path().string());
  };
  if (recursive) {
    fs::recursive_directory_iterator it(dir, fs::directory_options::follow_directory_symlink, ec), end;
    SHRINK_CHECK(!ec, dir.string(), ": cannot list (", ec.message(), ")");
    for (; it != end; it.increment(ec)) {
      SHRINK_CHECK(!ec, dir.string(), ": cannot list (", ec.message(), ")");
      if (hidden(it->path())) {
        if (it->is_directory(ec)) it.disable_recursion_pending();
        continue;
      }
      visit(*it);
    }
  } else {
    for (const auto& e : fs::directory_iterator(dir)) visit(e);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<fs::path> subfolders(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir))
    if (!hidden(e.path()) && e.is_directory(ec)) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

bool any_of_files(const fs::path& dir, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (fs::exists(dir / n) || fs::exists(dir / (std::string(n) + ".gz"))) return true;
  return false;
}

// The split directory an image folder gives for train or evaluation, or "" (single split).
fs::path split_dir(const fs::path& root, bool train) {
  if (!fs::is_directory(root / "train")) return {};
  if (train) return root / "train";
  for (const char* s : {"val", "test"})
    if (fs::is_directory(root / s)) return root / s;
  return {};
}

int64_t model_dim(const std::vector<int64_t>& input, size_t i) {
  return input.size() == 4 && input[i] > 0 ? input[i] : 0;
}

Dataset load_folder(const DataRequest& r) {
  fs::path root(r.path);
  SHRINK_CHECK(fs::is_directory(root), r.path, ": not a directory (expected an image folder)");
  fs::path dir = split_dir(root, r.train);
  bool split = !dir.empty();
  if (!split) dir = root;
  Dataset d;
  d.name = dir.string();
  std::vector<std::string> paths;
  std::vector<int64_t> labels;
  std::vector<fs::path> classes = subfolders(dir);
  if (!classes.empty()) {  // torchvision's ImageFolder: class index = position among the sorted subfolders
    for (size_t c = 0; c < classes.size(); ++c) {
      std::vector<std::string> files = images_under(classes[c], true);
      SHRINK_CHECK(!files.empty(), classes[c].string(),
                   ": class folder has no images (expected .jpg, .jpeg or .png files)");
      paths.insert(paths.end(), files.begin(), files.end());
      labels.insert(labels.end(), files.size(), static_cast<int64_t>(c));
      d.class_names.push_back(classes[c].filename().string());
    }
  } else {
    paths = images_under(dir, false);
    SHRINK_CHECK(!paths.empty(), dir.string(),
                 ": no images and no class folders (expected an image folder: one subfolder of .jpg/.png files per "
                 "class, or the images themselves)");
  }
  auto files = std::make_shared<ImageFiles>();
  files->paths = std::move(paths);
  const Preprocess& p = r.preprocess;
  const size_t ci = p.nhwc ? 3 : 1, hi = p.nhwc ? 1 : 2, wi = p.nhwc ? 2 : 3;
  Channels ch = p.channels;
  if (ch == Channels::kAny) {
    int64_t mc = model_dim(r.model_input, ci);
    if (mc == 1 || mc == 3) {
      ch = mc == 1 ? Channels::kGray : Channels::kRgb;
    } else {
      Image first = read_image(files->paths.front());
      ch = first.channels == 1 ? Channels::kGray : Channels::kRgb;
    }
  }
  files->channels = ch;
  files->resize = p.resize;
  files->fast_decode = p.fast_decode;
  int64_t h = p.crop, w = p.crop;
  if (h == 0) {
    h = model_dim(r.model_input, hi);
    w = model_dim(r.model_input, wi);
  }
  if (h == 0 || w == 0) {
    if (p.resize > 0) {
      h = w = p.resize;
    } else {  // no size asked for: the first image's
      Image first = read_image(files->paths.front());
      h = first.height;
      w = first.width;
    }
  }
  files->height = h;
  files->width = w;
  d.files = files;
  if (!labels.empty()) {
    d.labels = at::tensor(labels, at::kLong);
    d.classes = static_cast<int64_t>(d.class_names.size());
  }
  return d;
}

Dataset load_numpy(const DataRequest& r) {
  std::string ext = fs::path(r.path).extension().string();
  at::Tensor x, y;
  if (ext == ".npy") {
    x = io::read_npy(r.path);
  } else {
    SHRINK_CHECK(fs::is_regular_file(r.path), r.path, ": file not found");
    std::map<std::string, at::Tensor> members = io::read_npz(r.path);
    auto xi = members.find("x");
    if (xi == members.end()) {
      std::string keys;
      for (const auto& [k, v] : members) keys += (keys.empty() ? "" : ", ") + k;
      fail(r.path, ": no 'x' array (expected x: inputs [N, ...] and optionally y: labels [N]; it has ",
           keys.empty() ? "nothing" : keys, ")");
    }
    x = xi->second;
    if (auto yi = members.find("y"); yi != members.end()) y = yi->second;
  }
  SHRINK_CHECK(x.dim() >= 2, r.path, ": x is ", x.sizes(), " (expected [N, ...]: one sample per row)");
  SHRINK_CHECK(x.size(0) > 0, r.path, ": x holds no samples");
  Dataset d;
  d.name = r.path;
  if (x.scalar_type() == at::kByte) {  // images: [N, C, H, W], [N, H, W, C] with nhwc, or [N, H, W]
    if (x.dim() == 3) x = x.unsqueeze(1);
    SHRINK_CHECK(x.dim() == 4, r.path, ": uint8 x is ", x.sizes(), " (expected images [N, C, H, W] or [N, H, W])");
    if (r.preprocess.nhwc) x = x.permute({0, 3, 1, 2});
    d.images = x.contiguous();
  } else {
    SHRINK_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble || x.scalar_type() == at::kHalf,
                 r.path, ": x is ", c10::toString(x.scalar_type()),
                 " (expected float32 model inputs or uint8 images)");
    d.images = x.to(at::kFloat).contiguous();
  }
  if (y.defined()) {
    SHRINK_CHECK(y.dim() == 1 && y.size(0) == x.size(0), r.path, ": y is ", y.sizes(), " (expected ", x.size(0),
                 " labels, one per sample of x)");
    SHRINK_CHECK(at::isIntegralType(y.scalar_type(), false), r.path, ": y is ", c10::toString(y.scalar_type()),
                 " (expected integer class labels)");
    d.labels = y.to(at::kLong);
    int64_t lo = d.labels.min().item<int64_t>();
    SHRINK_CHECK(lo >= 0, r.path, ": label ", lo, " in y is negative (expected class indices 0..K-1)");
    d.classes = d.labels.max().item<int64_t>() + 1;
  }
  return d;
}

// A single split's seeded part: the evaluation part (a fraction of the samples) or
// the training part (the rest), each in the split's order.
Dataset holdout(const Dataset& d, const DataRequest& r) {
  SHRINK_CHECK(r.val_fraction > 0 && r.val_fraction < 1, "--val-fraction: ", r.val_fraction, " is not between 0 and 1");
  at::Generator gen = at::detail::createCPUGenerator(r.seed ^ 0x5eed5011u);
  at::Tensor perm = at::randperm(d.size(), gen, at::kLong);
  int64_t val = std::max<int64_t>(1, static_cast<int64_t>(r.val_fraction * d.size()));
  SHRINK_CHECK(val < d.size(), d.name, ": ", d.size(), " samples are too few to hold out ", r.val_fraction, " of them");
  at::Tensor keep = std::get<0>((r.train ? perm.slice(0, val) : perm.slice(0, 0, val)).sort());
  std::vector<int64_t> ids(keep.data_ptr<int64_t>(), keep.data_ptr<int64_t>() + keep.numel());
  return d.subset(ids, r.train ? "[train part]" : "[validation part]");
}

// In-memory images resized and cropped (centre) as asked.
void preprocess_in_memory(Dataset& d, const Preprocess& p) {
  if (!d.images.defined() || d.raw() || (p.resize == 0 && p.crop == 0)) return;
  at::Tensor x = d.images;
  if (p.resize > 0) {
    int64_t h = x.size(2), w = x.size(3);
    int64_t nh = h <= w ? p.resize : static_cast<int64_t>(static_cast<double>(p.resize) * h / w);
    int64_t nw = h <= w ? static_cast<int64_t>(static_cast<double>(p.resize) * w / h) : p.resize;
    std::vector<at::Tensor> parts;  // in chunks: a float copy of the whole set would be 4x its size
    for (int64_t b = 0; b < x.size(0); b += 1024)
      parts.push_back(at::_upsample_bilinear2d_aa(x.slice(0, b, b + 1024).to(at::kFloat), {nh, nw}, false)
                          .round_()
                          .clamp_(0, 255)
                          .to(at::kByte));
    x = at::cat(parts);
  }
  if (p.crop > 0) {
    int64_t h = x.size(2), w = x.size(3);
    SHRINK_CHECK(p.crop <= h && p.crop <= w, d.name, ": images are ", w, "x", h, ", smaller than --crop ", p.crop);
    // torchvision's CenterCrop rounds as Python does (half to even).
    int64_t top = static_cast<int64_t>(std::nearbyint((h - p.crop) / 2.0));
    int64_t left = static_cast<int64_t>(std::nearbyint((w - p.crop) / 2.0));
    x = x.slice(2, top, top + p.crop).slice(3, left, left + p.crop);
  }
  d.images = x.contiguous();
}

}  // namespace

void ImageFiles::read(int64_t i, uint8_t* out, std::mt19937_64* rng) const {
  const std::string& path = paths.at(i);
  // Without --resize, an image of another size is resized to cover the crop (shorter side).
  int64_t want = resize;
  Image img = read_image(path, !fast_decode ? 0 : want > 0 ? want : std::max(height, width));
  if (want == 0 && (img.height != height || img.width != width)) want = std::max(height, width);
  if (img.channels != channel_count()) {
    if (!converted_said->exchange(true))
      std::fprintf(stderr, "note: %s has %lld channel(s); converted to %s (as every such image; said once)\n",
                   path.c_str(), static_cast<long long>(img.channels), channels_name(channels));
  }
  convert_channels(img, channels);
  Transform t;
  t.resize = want;
  t.crop_h = height;
  t.crop_w = width;
  if (rng) {
    t.random_crop = true;
    t.flip = std::bernoulli_distribution(0.5)(*rng);
  }
  transform_to_chw(img, t, rng, out, path);
}

int64_t Dataset::size() const {
  if (files) return static_cast<int64_t>(files->paths.size());
  if (images.defined()) return images.size(0);
  return labels.defined() ? labels.size(0) : 0;
}

std::vector<int64_t> Dataset::sample_shape() const {
  if (files) return {files->channel_count(), files->height, files->width};
  if (images.defined()) return std::vector<int64_t>(images.sizes().begin() + 1, images.sizes().end());
  return {};
}

at::Tensor Dataset::gather(const std::vector<int64_t>& ids) const {
  if (!files) return images.index_select(0, at::tensor(ids, at::kLong));
  std::vector<int64_t> shape = sample_shape();
  shape.insert(shape.begin(), static_cast<int64_t>(ids.size()));
  at::Tensor out = at::empty(shape, at::kByte);
  const int64_t per = out.numel() / std::max<int64_t>(1, out.size(0));
  for (size_t k = 0; k < ids.size(); ++k) files->read(ids[k], out.data_ptr<uint8_t>() + k * per);
  return out;
}

Dataset Dataset::subset(const std::vector<int64_t>& ids, const std::string& suffix) const {
  Dataset r = *this;
  r.name = name + suffix;
  at::Tensor idx = at::tensor(ids, at::kLong);
  if (files) {
    auto f = std::make_shared<ImageFiles>(*files);
    f->paths.clear();
    for (int64_t i : ids) f->paths.push_back(files->paths.at(i));
    r.files = f;
  } else {
    r.images = images.index_select(0, idx);
  }
  if (labels.defined()) r.labels = labels.index_select(0, idx);
  return r;
}

std::string detect_kind(const std::string& path) {
  fs::path p(path);
  std::error_code ec;
  SHRINK_CHECK(fs::exists(p, ec), path, ": not found (expected a data directory, an image folder or a .npy/.npz file)");
  if (!fs::is_directory(p, ec)) {
    std::string ext = p.extension().string();
    if (ext == ".npy" || ext == ".npz") return "numpy";
    fail(path, ": is a file but not .npy or .npz (expected a data directory, an image folder or a NumPy file)");
  }
  if (any_of_files(p, {"train-images-idx3-ubyte", "t10k-images-idx3-ubyte"})) {
    return p.filename().string().find("fashion") != std::string::npos || p.filename().empty() ? "fashion-mnist" : "mnist";
  }
  if (any_of_files(p, {"data_batch_1.bin", "test_batch.bin"})) return "cifar10";
  if (any_of_files(p, {"train.bin", "test.bin"})) return "cifar100";
  return "folder";
}

Dataset load(const DataRequest& r) {
  std::string kind = r.kind.empty() || r.kind == "auto" ? detect_kind(r.path) : r.kind;
  Dataset d;
  if (kind == "folder" || kind == "numpy") {
    d = kind == "folder" ? load_folder(r) : load_numpy(r);
    // A single split (no train/ folder) serves both, unless a part is held out.
    bool single = kind == "numpy" || split_dir(r.path, true).empty();
    if (single && r.val_fraction > 0) d = holdout(d, r);
  } else {
    d = load_dataset(kind, r.path, r.train);
    if (r.kind.empty() || r.kind == "auto") {  // named after the directory (the package's: fashion-mnist)
      std::string base = fs::path(r.path).lexically_normal().filename().string();
      if (base.empty()) base = fs::path(r.path).lexically_normal().parent_path().filename().string();
      if (!base.empty()) d.name = base + (r.train ? "/train" : "/test");
    }
  }
  preprocess_in_memory(d, r.preprocess);
  return d;
}

}  // namespace shrink::data
