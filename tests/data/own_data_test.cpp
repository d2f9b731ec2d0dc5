// The user's own data: image folders and NumPy files written by other tools (PIL,
// numpy), preprocessing against torchvision's, unlabeled data, bad input.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <filesystem>
#include <random>
#include <fstream>

#include "shrink/core/error.h"
#include "shrink/data/dataset.h"
#include "shrink/data/loader.h"
#include "shrink/io/npy.h"
#include "support/errors.h"
#include "support/onnx_builder.h"
#include "support/paths.h"
#include "support/process.h"

using namespace shrink;
using test_support::error_of;
using test_support::run_command;

namespace {

const std::string kCli = SHRINK_CLI;
const std::string kImageNet = " --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225";

std::string make_data(const std::string& args) {
  std::string cmd = test_support::python() + " " + SHRINK_SOURCE_DIR + "/tools/make_image_data.py " + args;
  auto r = run_command(cmd);
  return r.status == 0 ? "" : cmd + ": " + r.output;
}

nlohmann::json json_of(const test_support::ProcessResult& r) {
  size_t at = r.output.find('{');
  EXPECT_NE(at, std::string::npos) << r.output;
  return nlohmann::json::parse(r.output.substr(at == std::string::npos ? 0 : at));
}

std::string fashion_dir() {
  if (const char* env = std::getenv("SHRINK_DATA")) return env;
  return data::default_data_dir();
}

}  // namespace

// The package's Fashion-MNIST test set written by PIL as PNG files in the ImageFolder
// layout, and by numpy as .npz (uint8 images, and float inputs normalised as the
// model was trained), evaluates a LeNet-5 to exactly what the IDX files give.
TEST(OwnData, FashionMnistAsPngFolderAndNpzEvaluatesExactlyAsTheIdxFiles) {
  test_support::TempDir dir;
  ASSERT_EQ(make_data("idx-to-folder " + fashion_dir() + " " + dir.path), "");
  std::string model = dir.file("lenet5.onnx");
  auto t = run_command(kCli + " train -m lenet5 -o " + model + " --epochs 1 --json");
  ASSERT_EQ(t.status, 0) << t.output;
  auto eval = [&](const std::string& data) {
    auto r = run_command(kCli + " eval " + model + data + " --json");
    EXPECT_EQ(r.status, 0) << r.output;
    return json_of(r);
  };
  nlohmann::json idx = eval(""), folder = eval(" --data " + dir.file("folder")),
                 npz = eval(" --data " + dir.file("test.npz")), flt = eval(" --data " + dir.file("test_float.npz"));
  EXPECT_EQ(idx["samples"], 10000);
  for (const nlohmann::json* j : {&folder, &npz}) {
    EXPECT_EQ((*j)["samples"], 10000);
    EXPECT_EQ((*j)["accuracy"], idx["accuracy"]);
    EXPECT_EQ((*j)["confusion"], idx["confusion"]);
    // The folder is in class order, the IDX file is not: the summed loss differs in rounding only.
    EXPECT_NEAR((*j)["loss"].get<double>(), idx["loss"].get<double>(), 1e-6);
  }
  // Float inputs are the model's input as they are: normalised by numpy with
  // Fashion-MNIST's statistics (what training stored, to 4 digits), they agree up to rounding.
  EXPECT_NEAR(flt["accuracy"].get<double>(), idx["accuracy"].get<double>(), 0.0015);
  // The folder is detected (no --dataset) and described by `shrink data`.
  auto d = run_command(kCli + " data --data " + dir.file("folder") + " --json");
  ASSERT_EQ(d.status, 0) << d.output;
  nlohmann::json dj = json_of(d);
  EXPECT_EQ(dj["kind"], "folder");
  EXPECT_EQ(dj["classes"], 10);
  EXPECT_EQ(dj["class_names"][0], "00");
  EXPECT_EQ(dj["sample_shape"], nlohmann::json::array({1, 28, 28}));
}

// Decode + resize + centre crop + normalise, against torchvision's ImageFolder with
// Resize(256), CenterCrop(224), ToTensor, Normalize on JPEG files PIL wrote (some
// grayscale, converted to RGB as PIL's convert("RGB") does): within one 8-bit level.
TEST(OwnData, PreprocessingMatchesTorchvisionWithinOneLevel) {
  test_support::TempDir dir;
  std::string folder = dir.file("jpegs");
  ASSERT_EQ(make_data("jpegs " + folder + " --n 12 --classes 3 --gray-every 4"), "");
  ASSERT_EQ(make_data("torchvision-batch " + folder + " " + dir.file("ref.npy") + " --resize 256 --crop 224" + kImageNet +
                      " --n 12"),
            "");
  auto r = run_command(kCli + " data --data " + folder + " --resize 256 --crop 224 --channels rgb" + kImageNet +
                       " --batch 12 --save-batch " + dir.file("ours.npy"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("channel(s); converted to rgb (as every such image; said once)"), std::string::npos) << r.output;
  at::Tensor ours = io::read_npy(dir.file("ours.npy")), ref = io::read_npy(dir.file("ref.npy"));
  ASSERT_EQ(ours.sizes(), ref.sizes());
  at::Tensor std = at::tensor({0.229f, 0.224f, 0.225f}).view({1, 3, 1, 1});
  at::Tensor levels = (ours - ref).abs() * std * 255;
  EXPECT_LE(levels.max().item<float>(), 1.01f);
  EXPECT_LT(levels.mean().item<float>(), 0.5f);

  // Large photos: the full decode stays within one level; --fast-decode (DCT scaling
  // to 1/4 here) is close but no longer equal.
  std::string big = dir.file("big");
  ASSERT_EQ(make_data("jpegs " + big + " --n 3 --classes 1 --min-side 1100 --max-side 1300"), "");
  ASSERT_EQ(make_data("torchvision-batch " + big + " " + dir.file("bigref.npy") + " --resize 256 --crop 224" + kImageNet +
                      " --n 3"),
            "");
  for (bool fast : {false, true}) {
    auto b = run_command(kCli + " data --data " + big + " --resize 256 --crop 224" + kImageNet + " --batch 3 --save-batch " +
                         dir.file("bigours.npy") + (fast ? " --fast-decode" : ""));
    ASSERT_EQ(b.status, 0) << b.output;
    at::Tensor d = (io::read_npy(dir.file("bigours.npy")) - io::read_npy(dir.file("bigref.npy"))).abs() * std * 255;
    if (fast) {
      EXPECT_GT(d.max().item<float>(), 1.5f);
      EXPECT_LT(d.mean().item<float>(), 3.0f);
    } else {
      EXPECT_LE(d.max().item<float>(), 1.01f);
    }
  }
}

// A torchvision ResNet-18 (random weights) at 224x224 calibrates from a folder of
// JPEG files with no labels; the int8 model's agreement with the float model is
// reported by quantize and by eval --reference.
TEST(OwnData, ResNet18CalibratesFromUnlabeledJpegsAndReportsAgreement) {
  test_support::TempDir dir;
  std::string cmd = test_support::python() + " " + SHRINK_SOURCE_DIR +
                    "/tools/export_torchvision.py --model resnet18 --size 224 --batch 1 --dynamic-batch --out " + dir.path;
  auto e = run_command(cmd);
  ASSERT_EQ(e.status, 0) << cmd << ": " << e.output;
  std::string folder = dir.file("calibration");
  ASSERT_EQ(make_data("jpegs " + folder + " --n 24 --gray-every 6 --seed 1"), "");
  std::string fp = dir.file("model.onnx"), q = dir.file("int8.onnx");
  auto qr = run_command(kCli + " quantize " + fp + " -o " + q + " --mode static --data " + folder +
                        " --resize 256 --crop 224" + kImageNet + " --calib-batches 3 --batch 8 --no-latency --json");
  ASSERT_EQ(qr.status, 0) << qr.output;
  nlohmann::json qj = json_of(qr);
  EXPECT_EQ(qj["calibration_batches"], 3);
  ASSERT_TRUE(qj["after"].contains("agreement")) << qj.dump();
  EXPECT_FALSE(qj["after"].contains("test_accuracy"));
  // The preprocessing is stored in the quantized model: eval needs no flags again.
  auto er = run_command(kCli + " eval " + q + " --data " + folder + " --reference " + fp + " --json");
  ASSERT_EQ(er.status, 0) << er.output;
  nlohmann::json ej = json_of(er);
  EXPECT_EQ(ej["samples"], 24);
  EXPECT_GE(ej["agreement"].get<double>(), 0.75);
  EXPECT_GT(ej["snr_db"].get<double>(), 15.0);
  EXPECT_LT(ej["kl"].get<double>(), 0.05);
  EXPECT_DOUBLE_EQ(ej["agreement"].get<double>(), qj["after"]["agreement"]["top1"].get<double>());
  // The model against itself: full agreement, no divergence.
  auto self = run_command(kCli + " eval " + fp + " --data " + folder + " --reference " + fp + kImageNet +
                          " --resize 256 --crop 224 --json");
  ASSERT_EQ(self.status, 0) << self.output;
  nlohmann::json sj = json_of(self);
  EXPECT_EQ(sj["agreement"], 1.0);
  EXPECT_NEAR(sj["kl"].get<double>(), 0.0, 1e-12);
  EXPECT_EQ(sj["snr_db"], "inf");
  // Without labels and without a reference, accuracy cannot be had: said so.
  auto nolabel = run_command(kCli + " eval " + q + " --data " + folder);
  EXPECT_EQ(nolabel.status, 1);
  EXPECT_NE(nolabel.output.find("has no labels: accuracy needs them (compare with the original model instead: eval "
                                "--reference)"),
            std::string::npos)
      << nolabel.output;
}

// Training from an image folder with train/ and val/ splits, the preprocessing
// stored in the model (metadata) and used again by eval; top-5 for > 10 classes.
TEST(OwnData, TrainsFromASplitFolderAndStoresThePreprocessing) {
  test_support::TempDir dir;
  ASSERT_EQ(make_data("jpegs " + dir.file("set/train") + " --n 48 --classes 12 --seed 2"), "");
  ASSERT_EQ(make_data("jpegs " + dir.file("set/val") + " --n 24 --classes 12 --seed 3"), "");
  std::string model = dir.file("m.onnx");
  auto t = run_command(kCli + " train -m lenet5 -o " + model + " --data " + dir.file("set") +
                       " --resize 40 --crop 32 --channels gray --augment --epochs 1 --batch 16 --json");
  ASSERT_EQ(t.status, 0) << t.output;
  auto info = run_command(kCli + " info " + model + " --json");
  ASSERT_EQ(info.status, 0) << info.output;
  nlohmann::json ij = json_of(info);
  std::string dumped = ij.dump();
  for (const char* key : {"shrink.resize", "shrink.crop", "shrink.channels", "shrink.input_mean"})
    EXPECT_NE(dumped.find(key), std::string::npos) << key << " not in " << dumped;
  auto e = run_command(kCli + " eval " + model + " --data " + dir.file("set") + " --json");
  ASSERT_EQ(e.status, 0) << e.output;
  nlohmann::json ej = json_of(e);
  EXPECT_EQ(ej["samples"], 24);
  ASSERT_TRUE(ej.contains("top5_accuracy"));
  EXPECT_GE(ej["top5_accuracy"].get<double>(), ej["accuracy"].get<double>());
  EXPECT_DOUBLE_EQ(ej["accuracy"].get<double>(), json_of(t)["test_accuracy"].get<double>());
}

// Several loader threads give exactly the batches one thread gives, augmentation
// included (it depends on seed, epoch and batch index only).
TEST(OwnData, LoaderThreadsDoNotChangeTheBatches) {
  test_support::TempDir dir;
  ASSERT_EQ(make_data("jpegs " + dir.file("imgs") + " --n 20 --classes 2 --seed 4"), "");
  data::DataRequest r;
  r.path = dir.file("imgs");
  r.train = true;
  r.preprocess.resize = 36;
  r.preprocess.crop = 32;
  data::Dataset d = data::load(r);
  ASSERT_TRUE(d.files);
  EXPECT_EQ(d.sample_shape(), (std::vector<int64_t>{3, 32, 32}));
  auto batches = [&](int workers) {
    data::LoaderOptions lo;
    lo.batch_size = 3;
    lo.seed = 7;
    lo.horizontal_flip = true;
    lo.workers = workers;
    lo.normalization = {{0, 0, 0}, {1, 1, 1}};
    data::DataLoader loader(d, lo);
    std::vector<at::Tensor> out;
    loader.start_epoch(1);
    data::Batch b;
    while (loader.next(b)) out.push_back(b.images);
    return out;
  };
  std::vector<at::Tensor> one = batches(1), three = batches(3);
  ASSERT_EQ(one.size(), 7u);
  ASSERT_EQ(three.size(), one.size());
  for (size_t i = 0; i < one.size(); ++i) EXPECT_TRUE(at::equal(one[i], three[i])) << "batch " << i;
}

// Unlabeled data where labels are not essential: Taylor importance on the model's
// own top-1 class, sensitivity and distillation from a teacher alone (alpha 1).
TEST(OwnData, UnlabeledNpyServesTaylorPruningAndDistillation) {
  test_support::TempDir dir;
  std::string teacher = dir.file("teacher.onnx");
  auto t = run_command(kCli + " train -m lenet5 -o " + teacher + " --epochs 1 --json");
  ASSERT_EQ(t.status, 0) << t.output;
  ASSERT_EQ(make_data("idx-to-folder " + fashion_dir() + " " + dir.path + " --npz-only"), "");
  // x only: the images, no labels.
  std::string npy = dir.file("x.npy");
  std::string py = test_support::python() + " -c \"import numpy as np; np.save('" + npy + "', np.load('" +
                   dir.file("test.npz") + "')['x'])\"";
  ASSERT_EQ(run_command(py).status, 0);
  auto p = run_command(kCli + " prune " + teacher + " -o " + dir.file("pruned.onnx") +
                       " --method taylor --taylor-batches 4 --amount 0.3 --no-latency --data " + npy + " --json");
  ASSERT_EQ(p.status, 0) << p.output;
  nlohmann::json pj = json_of(p);
  ASSERT_TRUE(pj["after"].contains("agreement")) << pj.dump();
  EXPECT_GT(pj["after"]["agreement"]["top1"].get<double>(), 0.3);
  auto d = run_command(kCli + " distill --teacher " + teacher + " --student lenet5 --width 0.5 -o " +
                       dir.file("student.onnx") + " --epochs 2 --lr 0.01 --temperature 2 --data " + npy);
  ASSERT_EQ(d.status, 0) << d.output;
  EXPECT_NE(d.output.find("distilling from the teachers alone (--alpha 1, not 0.5)"), std::string::npos) << d.output;
  EXPECT_NE(d.output.find("agreement"), std::string::npos) << d.output;
  auto e = run_command(kCli + " eval " + dir.file("student.onnx") + " --data " + npy + " --reference " + teacher +
                       " --json");
  ASSERT_EQ(e.status, 0) << e.output;
  EXPECT_GT(json_of(e)["agreement"].get<double>(), 0.6);
}

// Bad input: one line naming the file (and image) and what was expected.
TEST(OwnData, BadDataIsNamedInOneLine) {
  test_support::TempDir dir;
  namespace fs = std::filesystem;
  auto load = [](const std::string& path) {
    data::DataRequest r;
    r.path = path;
    return error_of([&] {
      data::Dataset d = data::load(r);
      if (d.files) d.gather({0});
    });
  };
  fs::create_directories(dir.file("empty"));
  EXPECT_EQ(load(dir.file("empty")), dir.file("empty") +
                                         ": no images and no class folders (expected an image folder: one subfolder of "
                                         ".jpg/.png files per class, or the images themselves)");
  fs::create_directories(dir.file("noimages/cat"));
  fs::create_directories(dir.file("noimages/dog"));
  std::ofstream(dir.file("noimages/cat/readme.txt")) << "x";
  std::ofstream(dir.file("noimages/dog/readme.txt")) << "x";
  EXPECT_EQ(load(dir.file("noimages")),
            dir.file("noimages/cat") + ": class folder has no images (expected .jpg, .jpeg or .png files)");
  ASSERT_EQ(make_data("jpegs " + dir.file("good") + " --n 2"), "");
  std::string jpeg;
  {
    std::ifstream in(dir.file("good/img00000.jpg"), std::ios::binary);
    jpeg.assign(std::istreambuf_iterator<char>(in), {});
  }
  fs::create_directories(dir.file("truncated"));
  std::ofstream(dir.file("truncated/a.jpg"), std::ios::binary) << jpeg.substr(0, jpeg.size() / 2);
  EXPECT_EQ(load(dir.file("truncated")), dir.file("truncated/a.jpg") + ": truncated JPEG (the data ends before the image does)");
  fs::create_directories(dir.file("corrupt"));
  std::string bad = jpeg;
  for (size_t i = 200; i < 260 && i < bad.size(); ++i) bad[i] = static_cast<char>(0xFF);
  std::ofstream(dir.file("corrupt/a.jpg"), std::ios::binary) << bad;
  std::string corrupt = load(dir.file("corrupt"));
  EXPECT_EQ(corrupt.rfind(dir.file("corrupt/a.jpg") + ": corrupt or truncated JPEG (", 0), 0u) << corrupt;
  fs::create_directories(dir.file("notimage"));
  std::ofstream(dir.file("notimage/a.png")) << "hello, not a picture";
  EXPECT_EQ(load(dir.file("notimage")), dir.file("notimage/a.png") + ": not a JPEG or PNG file (unknown magic bytes)");
  fs::create_directories(dir.file("badpng"));
  std::ofstream(dir.file("badpng/a.png"), std::ios::binary) << std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16);
  std::string badpng = load(dir.file("badpng"));
  EXPECT_EQ(badpng.rfind(dir.file("badpng/a.png") + ": corrupt PNG (", 0), 0u) << badpng;

  auto npz = [&](const std::string& name, const std::string& code) {
    std::string path = dir.file(name);
    std::string py = test_support::python() + " -c \"import numpy as np; p='" + path + "'; " + code + "\"";
    EXPECT_EQ(run_command(py).status, 0) << py;
    return path;
  };
  std::string nox = npz("nox.npz", "np.savez(p, images=np.zeros((2, 1, 4, 4), np.uint8))");
  EXPECT_EQ(load(nox), nox + ": no 'x' array (expected x: inputs [N, ...] and optionally y: labels [N]; it has images)");
  std::string short_y = npz("y.npz", "np.savez(p, x=np.zeros((3, 1, 4, 4), np.uint8), y=np.zeros(2, np.int64))");
  EXPECT_EQ(load(short_y), short_y + ": y is [2] (expected 3 labels, one per sample of x)");
  std::string neg = npz("neg.npz", "np.savez(p, x=np.zeros((2, 1, 4, 4), np.uint8), y=np.array([0, -1]))");
  EXPECT_EQ(load(neg), neg + ": label -1 in y is negative (expected class indices 0..K-1)");
  std::string ints = npz("int.npz", "np.savez(p, x=np.zeros((2, 3), np.int32))");
  EXPECT_EQ(load(ints), ints + ": x is Int (expected float32 model inputs or uint8 images)");
  EXPECT_EQ(load(dir.file("nox.txt")), dir.file("nox.txt") +
                                           ": not found (expected a data directory, an image folder or a .npy/.npz file)");
  std::ofstream(dir.file("garbage.npz")) << "not a zip";
  std::string garbage = load(dir.file("garbage.npz"));
  EXPECT_EQ(garbage.rfind(dir.file("garbage.npz") + ": cannot read as a .npz (zip) archive (", 0), 0u) << garbage;

  // Float inputs of another shape than the model's: the file, the input and both shapes.
  test_support::OnnxBuilder b;  // a 1x28x28 classifier: Flatten, Gemm
  b.input("input", {-1, 1, 28, 28}).output("y");
  b.initializer("W", at::zeros({10, 784}));
  b.node("Flatten", {"input"}, {"flat"}, "flatten");
  auto& gemm = b.node("Gemm", {"flat", "W"}, {"y"}, "fc");
  test_support::OnnxBuilder::attr(gemm, "transB", int64_t{1});
  std::string model = b.save(dir.file("flat.onnx"));
  std::string wrong = npz("wrong.npz", "np.savez(p, x=np.zeros((2, 1, 32, 32), np.float32))");
  auto r = run_command(kCli + " eval " + model + " --data " + wrong + " --reference " + model);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("model input 'input' is float32[N,1,28,28] but '" + wrong + "' has 1x32x32 inputs"),
            std::string::npos)
      << r.output;
}

// The resize + crop + flip against ATen's antialiased bilinear resize of the whole
// image followed by the crop: downscaling, upscaling, gray and RGB, random windows.
TEST(OwnData, CropWindowResizeEqualsAtensFullResizeThenCrop) {
  std::mt19937_64 rng(11);
  for (auto [h, w, c, resize] : std::vector<std::array<int64_t, 4>>{
           {375, 500, 3, 256}, {500, 333, 3, 224}, {90, 120, 1, 160}, {64, 64, 3, 40}, {301, 257, 1, 255}}) {
    data::Image img;
    img.height = h, img.width = w, img.channels = c;
    at::Tensor pixels = at::randint(0, 256, {h, w, c}, at::kLong).to(at::kByte);
    pixels = at::avg_pool2d(pixels.permute({2, 0, 1}).to(at::kFloat).unsqueeze(0), 5, 1, 2).squeeze(0)
                 .permute({1, 2, 0}).round().to(at::kByte).contiguous();  // smoothed, as photographs are
    img.pixels.assign(pixels.data_ptr<uint8_t>(), pixels.data_ptr<uint8_t>() + pixels.numel());
    int64_t nh = h <= w ? resize : static_cast<int64_t>(static_cast<double>(resize) * h / w);
    int64_t nw = h <= w ? static_cast<int64_t>(static_cast<double>(resize) * w / h) : resize;
    at::Tensor full = at::_upsample_bilinear2d_aa(pixels.permute({2, 0, 1}).unsqueeze(0).to(at::kFloat), {nh, nw}, false)
                          .squeeze(0);
    for (bool flip : {false, true}) {
      data::Transform t;
      t.resize = resize;
      t.crop_h = std::min(nh, resize) - 7;
      t.crop_w = std::min(nw, resize) - 3;
      t.random_crop = true;
      t.flip = flip;
      std::mt19937_64 a = rng, b = rng;  // the same window for both
      std::vector<uint8_t> out(c * t.crop_h * t.crop_w);
      data::transform_to_chw(img, t, &a, out.data(), "synthetic");
      int64_t top = std::uniform_int_distribution<int64_t>(0, nh - t.crop_h)(b);
      int64_t left = std::uniform_int_distribution<int64_t>(0, nw - t.crop_w)(b);
      rng = a;
      at::Tensor ref = full.slice(1, top, top + t.crop_h).slice(2, left, left + t.crop_w);
      if (flip) ref = ref.flip({2});
      at::Tensor ours = at::from_blob(out.data(), {c, t.crop_h, t.crop_w}, at::kByte).to(at::kFloat);
      float diff = (ours - ref.round().clamp(0, 255)).abs().max().item<float>();
      EXPECT_LE(diff, 1.0f) << h << "x" << w << "x" << c << " to " << resize << (flip ? " flipped" : "");
    }
  }
}

// NHWC: a uint8 .npz of [N, H, W, C] images is read as such and batches come out in
// the model's [B, H, W, C]; --val-fraction splits a single split into disjoint,
// seeded parts that cover it.
TEST(OwnData, NhwcNpzAndValFraction) {
  test_support::TempDir dir;
  std::string path = dir.file("hwc.npz");
  std::string py = test_support::python() + " -c \"import numpy as np; r = np.random.default_rng(0); np.savez('" + path +
                   "', x=r.integers(0, 256, (20, 5, 6, 3), dtype=np.uint8), y=np.arange(20) % 4)\"";
  ASSERT_EQ(run_command(py).status, 0);
  data::DataRequest r;
  r.path = path;
  r.preprocess.nhwc = true;
  data::Dataset d = data::load(r);
  EXPECT_EQ(d.sample_shape(), (std::vector<int64_t>{3, 5, 6}));
  EXPECT_EQ(d.classes, 4);
  data::LoaderOptions lo;
  lo.batch_size = 8;
  lo.shuffle = false;
  lo.nhwc = true;
  lo.normalization = {{0.5, 0.5, 0.5}, {0.25, 0.25, 0.25}};
  data::DataLoader loader(d, lo);
  loader.start_epoch(0);
  data::Batch b;
  ASSERT_TRUE(loader.next(b));
  EXPECT_EQ(b.images.sizes(), (std::vector<int64_t>{8, 5, 6, 3}));
  // The file's own [N, H, W, C] values, normalised.
  at::Tensor hwc = d.images.slice(0, 0, 8).permute({0, 2, 3, 1}).to(at::kFloat).div(255).sub(0.5).div(0.25);
  EXPECT_TRUE(at::allclose(b.images, hwc, 1e-5, 1e-6));

  r.val_fraction = 0.25;
  r.seed = 3;
  r.train = true;
  data::Dataset train = data::load(r);
  r.train = false;
  data::Dataset val = data::load(r);
  EXPECT_EQ(train.size(), 15);
  EXPECT_EQ(val.size(), 5);
  at::Tensor all = at::cat({train.images, val.images});
  EXPECT_EQ(std::get<0>(at::_unique(all.flatten(1).sum(1))).numel(), std::get<0>(at::_unique(d.images.flatten(1).sum(1))).numel());
  EXPECT_EQ(at::cat({train.labels, val.labels}).sum().item<int64_t>(), d.labels.sum().item<int64_t>());
  r.seed = 4;
  EXPECT_FALSE(at::equal(data::load(r).images, val.images)) << "another seed, another validation part";
}
