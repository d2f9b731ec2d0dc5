// The hostile-input catalogue: malformed models, tensors and data sets, odd flags
// and output paths, across the subcommands. Every case must end with the expected
// exit status (1 for bad input, 2 or more for a malformed command line), print
// exactly one line "shrink: error: ..." under 200 characters that contains the
// expected words, leave no file behind in its directory, and stay within a time
// and memory bound (no case needs more than the model and data it names).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include <zlib.h>

#include "shrink/io/npy.h"
#include "support/limited_process.h"
#include "support/npy_bytes.h"
#include "support/onnx_builder.h"

using namespace shrink;
using test_support::npy_with_header;
using test_support::OnnxBuilder;
namespace fs = std::filesystem;

namespace {

constexpr int kUsage = -2;        // any status >= 2: CLI11's codes for a malformed command line
constexpr double kTimeLimit = 60;  // seconds
constexpr long kMemoryLimitKb = 1536 * 1024;

struct Case {
  std::string name;
  std::string args;      // after the binary; {dir} is the case's directory
  int status;            // 1, or kUsage
  std::string expected;  // a substring of the error line
};

// How gtest (and so CTest's test list) shows a case: its command, not its bytes.
void PrintTo(const Case& c, std::ostream* os) { *os << "shrink " << c.args; }

std::string write(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}


std::string idx(const std::vector<uint32_t>& dims, size_t data_bytes, uint8_t type = 0x08) {
  std::string s = {0, 0, static_cast<char>(type), static_cast<char>(dims.size())};
  for (uint32_t d : dims)
    for (int shift : {24, 16, 8, 0}) s.push_back(static_cast<char>((d >> shift) & 0xff));
  return s + std::string(data_bytes, '\x01');
}

// The files every case may use, made once per case in its own directory.
void make_files(const std::string& dir) {
  OnnxBuilder good;
  good.input("x", {-1, 3}).output("y");
  good.initializer("W", at::arange(6, at::kFloat).view({2, 3}));
  auto& g = good.node("Gemm", {"x", "W"}, {"y"}, "fc");
  OnnxBuilder::attr(g, "transB", int64_t{1});
  good.save(dir + "/good.onnx");
  const std::string bytes = good.bytes();
  OnnxBuilder two;  // two outputs, for all-or-nothing writes
  two.input("x", {-1, 3}).output("y").output("z");
  two.node("Relu", {"x"}, {"y"});
  two.node("Neg", {"x"}, {"z"});
  two.save(dir + "/two_outputs.onnx");
  write(dir + "/empty.onnx", "");
  const char garbage[] = "\x08\x07\x12\xff\xff\xff\xff\x0f garbage that is not protobuf";
  write(dir + "/garbage.onnx", std::string(garbage, sizeof garbage - 1));
  write(dir + "/truncated.onnx", bytes.substr(0, bytes.size() / 2));

  OnnxBuilder custom;
  custom.input("x", {-1, 3}).output("y");
  custom.node("FancyOp", {"x"}, {"y"}, "fancy");
  custom.save(dir + "/unsupported.onnx");

  OnnxBuilder future(99);
  future.input("x", {-1, 3}).output("y");
  future.node("Relu", {"x"}, {"y"});
  future.save(dir + "/opset99.onnx");

  OnnxBuilder dangling;
  dangling.input("x", {-1, 3}).output("nowhere");
  dangling.node("Relu", {"x"}, {"y"});
  dangling.save(dir + "/dangling.onnx");

  OnnxBuilder undefined;
  undefined.input("x", {-1, 3}).output("y");
  undefined.node("Add", {"x", "ghost"}, {"y"});
  undefined.save(dir + "/undefined_input.onnx");

  OnnxBuilder short_data = good;
  short_data.model().mutable_graph()->mutable_initializer(0)->mutable_raw_data()->resize(8);
  short_data.save(dir + "/short_initializer.onnx");

  OnnxBuilder huge = good;
  auto* init = huge.model().mutable_graph()->mutable_initializer(0);
  init->clear_dims();
  init->add_dims(1ll << 40);
  init->add_dims(1ll << 40);
  huge.save(dir + "/huge_initializer.onnx");

  // A few bytes declaring a dense shape of 2^40 elements through a sparse initializer.
  OnnxBuilder sparse;
  sparse.input("x", {-1, 3}).output("y");
  auto* sp = sparse.model().mutable_graph()->add_sparse_initializer();
  onnx_io::tensor_to_proto(at::ones({1}), *sp->mutable_values());
  sp->mutable_values()->set_name("S");
  onnx_io::tensor_to_proto(at::zeros({1}, at::kLong), *sp->mutable_indices());
  sp->add_dims(1 << 20);
  sp->add_dims(1 << 20);
  sparse.node("Add", {"x", "S"}, {"y"});
  sparse.save(dir + "/sparse_huge.onnx");

  // Expand to a 40 GB tensor from a 16-byte shape constant.
  OnnxBuilder expand;
  expand.input("x", {1, 1}).output("y");
  expand.initializer("shape", at::tensor({100000, 100000}, at::kLong));
  expand.node("Expand", {"x", "shape"}, {"y"}, "blow_up");
  expand.save(dir + "/expand_huge.onnx");

  OnnxBuilder bad_meta = good;
  auto* m = bad_meta.model().add_metadata_props();
  m->set_key("shrink.input_mean");
  m->set_value("abc");
  auto* s = bad_meta.model().add_metadata_props();
  s->set_key("shrink.input_std");
  s->set_value("1");
  bad_meta.save(dir + "/bad_metadata.onnx");
  OnnxBuilder inf_meta = bad_meta;
  inf_meta.model().mutable_metadata_props(0)->set_value("inf");
  inf_meta.save(dir + "/inf_metadata.onnx");

  io::write_npy(dir + "/x.npy", at::ones({4, 3}));
  io::write_npy(dir + "/wrong_shape.npy", at::ones({4, 5}));
  io::write_npy(dir + "/wrong_dtype.npy", at::ones({4, 3}, at::kLong));
  write(dir + "/junk.npy", "junk");
  write(dir + "/negative.npy", npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 3), }", std::string(12, 0)));
  std::string long_shape = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  for (int i = 0; i < 10000; ++i) long_shape += "1, ";
  write(dir + "/long_header.npy", npy_with_header(long_shape + "), }", "", 2));
  write(dir + "/header_length.npy", std::string("\x93NUMPY\x02\x00\xF0\xFF\xFF\xFF{'descr': '<", 20));
  std::string dims = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  for (int i = 0; i < 1000; ++i) dims += "1,";
  write(dir + "/many_dims.npy", npy_with_header(dims + "), }", std::string(4, 0)));
  write(dir + "/complex.npy", npy_with_header("{'descr': '<c8', 'fortran_order': False, 'shape': (4, 3), }", std::string(96, 0)));
  write(dir + "/big_endian.npy", npy_with_header("{'descr': '>f4', 'fortran_order': False, 'shape': (4, 3), }", std::string(48, 0)));
  write(dir + "/fortran.npy", npy_with_header("{'descr': '<f4', 'fortran_order': True, 'shape': (4, 3), }", std::string(48, 0)));
  write(dir + "/truncated.npy", npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), }", std::string(47, 0)));
  write(dir + "/huge_shape.npy", npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1048576, 1048576), }", "abcd"));
  fs::create_directory(dir + "/adir");
  fs::create_directory(dir + "/adir.npy");

  // IDX data directories, each broken one way (train files valid, the test files not).
  auto idx_dir = [&](const std::string& name, const std::string& images, const std::string& labels) {
    fs::create_directory(dir + "/" + name);
    write(dir + "/" + name + "/train-images-idx3-ubyte", idx({16, 28, 28}, 16 * 784));
    write(dir + "/" + name + "/train-labels-idx1-ubyte", idx({16}, 16));
    write(dir + "/" + name + "/t10k-images-idx3-ubyte", images);
    write(dir + "/" + name + "/t10k-labels-idx1-ubyte", labels);
  };
  idx_dir("data_truncated", idx({8, 28, 28}, 8 * 784 - 1), idx({8}, 8));
  idx_dir("data_mismatch", idx({8, 28, 28}, 8 * 784), idx({7}, 7));
  idx_dir("data_magic", std::string("\x01\x02\x08\x03", 4) + std::string(100, 0), idx({8}, 8));
  idx_dir("data_huge", idx({0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, 16), idx({8}, 8));
  idx_dir("data_rank", idx(std::vector<uint32_t>(200, 1), 1), idx({8}, 8));
  idx_dir("data_type", idx({8, 28, 28}, 8 * 784 * 4, 0x0D), idx({8}, 8));
  idx_dir("data_gzip", "\x1f\x8b\x08\x00 not really gzip", idx({8}, 8));
  fs::create_directory(dir + "/data_empty");

  // Image folders and NumPy data, each broken one way.
  fs::create_directories(dir + "/img_empty_class/a");
  fs::create_directories(dir + "/img_empty_class/b");
  // PNG's signature and the start of an IHDR chunk: a PNG that ends early.
  const std::string png_start("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x02", 20);
  write(dir + "/img_empty_class/a/x.png", png_start);  // never read: listing finds class b empty first
  fs::create_directories(dir + "/img_truncated/c");
  write(dir + "/img_truncated/c/a.jpg", std::string("\xff\xd8\xff\xe0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0", 20));
  fs::create_directories(dir + "/img_corrupt_png/c");
  write(dir + "/img_corrupt_png/c/a.png", png_start);
  fs::create_directories(dir + "/img_not_image/c");
  write(dir + "/img_not_image/c/a.jpg", "GIF89a, not what the name says");
  // .npz: a zip of .npy members, stored (no compression), written here from the zip spec.
  auto npz = [&](const std::string& name, const std::vector<std::pair<std::string, at::Tensor>>& members) {
    std::string out, central;
    auto le = [](std::string& s, uint64_t v, int bytes) {
      for (int i = 0; i < bytes; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    };
    for (const auto& [member, t] : members) {
      std::string data = io::npy_bytes(t), file = member + ".npy";
      uint32_t crc = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(data.data()), data.size()));
      size_t offset = out.size();
      le(out, 0x04034b50, 4), le(out, 20, 2), le(out, 0, 2), le(out, 0, 2), le(out, 0, 4), le(out, crc, 4);
      le(out, data.size(), 4), le(out, data.size(), 4), le(out, file.size(), 2), le(out, 0, 2);
      out += file + data;
      le(central, 0x02014b50, 4), le(central, 20, 2), le(central, 20, 2), le(central, 0, 2), le(central, 0, 2);
      le(central, 0, 4), le(central, crc, 4), le(central, data.size(), 4), le(central, data.size(), 4);
      le(central, file.size(), 2), le(central, 0, 2), le(central, 0, 2), le(central, 0, 2), le(central, 0, 2);
      le(central, 0, 4), le(central, offset, 4);
      central += file;
    }
    size_t at = out.size();
    out += central;
    le(out, 0x06054b50, 4), le(out, 0, 2), le(out, 0, 2), le(out, members.size(), 2), le(out, members.size(), 2);
    le(out, central.size(), 4), le(out, at, 4), le(out, 0, 2);
    write(dir + "/" + name, out);
  };
  npz("npz_no_x.npz", {{"images", at::zeros({2, 3})}});
  npz("npz_short_y.npz", {{"x", at::zeros({4, 3})}, {"y", at::zeros({3}, at::kLong)}});
  npz("npz_wrong_shape.npz", {{"x", at::zeros({4, 5})}, {"y", at::zeros({4}, at::kLong)}});
  npz("npz_good.npz", {{"x", at::zeros({4, 3})}, {"y", at::zeros({4}, at::kLong)}});
  npz("npz_no_y.npz", {{"x", at::zeros({4, 3})}});
  write(dir + "/npz_garbage.npz", "PK\x03\x04 but nothing after");
  write(dir + "/x.txt", "text");
}

std::vector<Case> catalogue() {
  std::vector<Case> c;
  // Model files, through every subcommand that reads one.
  const std::vector<std::pair<std::string, std::string>> models = {
      {"missing", "cannot open file"},     {"empty", "empty"},
      {"garbage", "not a valid ONNX"},     {"truncated", "not a valid ONNX"},
      {"unsupported", "FancyOp"},          {"opset99", "opset 99"},
      {"dangling", "nowhere"},             {"undefined_input", "ghost"},
      {"short_initializer", "W"},          {"huge_initializer", "W"},
      {"bad_metadata", "shrink.input_mean"}, {"inf_metadata", "shrink.input_mean"},
      {"sparse_huge", "bytes, over the limit of 4294967296 (--max-tensor-bytes)"}, {"expand_huge", "node 'blow_up' (Expand): output 'y'"},
  };
  for (const auto& [m, why] : models) c.push_back({"info_" + m, "info {dir}/" + m + ".onnx", 1, why});
  c.push_back({"info_directory", "info {dir}/adir", 1, "adir"});
  c.push_back({"info_npy_as_model", "info {dir}/x.npy", 1, "x.npy"});
  for (const std::string m : {"garbage", "unsupported", "truncated"}) {
    const std::string why = m == "unsupported" ? "FancyOp" : "not a valid ONNX";
    c.push_back({"run_" + m, "run {dir}/" + m + ".onnx -i {dir}/x.npy -o {dir}/y.npy", 1, why});
    c.push_back({"convert_" + m, "convert {dir}/" + m + ".onnx -o {dir}/out.onnx", 1, why});
    c.push_back({"bench_" + m, "bench {dir}/" + m + ".onnx --runs 1", 1, why});
    c.push_back({"prune_" + m, "prune {dir}/" + m + ".onnx -o {dir}/out.onnx --no-eval", 1, why});
    c.push_back({"quantize_" + m, "quantize {dir}/" + m + ".onnx -o {dir}/out.onnx --mode dynamic --no-eval", 1, why});
    c.push_back({"factorize_" + m, "factorize {dir}/" + m + ".onnx -o {dir}/out.onnx --no-eval", 1, why});
    c.push_back({"eval_" + m, "eval {dir}/" + m + ".onnx", 1, why});
    c.push_back({"train_" + m, "train --model {dir}/" + m + ".onnx --epochs 1 -o {dir}/out.onnx", 1, why});
    c.push_back({"distill_" + m, "distill --teacher {dir}/" + m + ".onnx --student mlp -o {dir}/out.onnx", 1, why});
    c.push_back({"compress_" + m, "compress {dir}/" + m + ".onnx -o {dir}/cout --no-ort", 1, why});
  }
  // compress: the output directory is a file; a recipe that is not one.
  c.push_back({"compress_output_file", "compress {dir}/good.onnx -o {dir}/x.txt --no-ort", 1, "x.txt"});
  c.push_back({"compress_recipe_garbage", "compress {dir}/good.onnx -o {dir}/cout --recipe {dir}/x.npy", 1, "x.npy"});
  c.push_back({"compress_recipe_missing", "compress {dir}/good.onnx -o {dir}/cout --recipe {dir}/none.yaml", 1, "none.yaml"});
  // Tensors given to run.
  const std::vector<std::pair<std::string, std::string>> tensors = {
      {"junk", "bad magic"},          {"negative", "non-negative integers"},
      {"long_header", "larger than numpy writes"}, {"header_length", "larger than numpy writes"},
      {"many_dims", "more than 64 dimensions"},    {"complex", "'<c8' is not supported"},
      {"big_endian", "'>f4' is not supported"},    {"fortran", "Fortran-order"},
      {"truncated", "truncated data"},             {"huge_shape", "truncated data"},
      {"wrong_shape", "expected shape float32[N,3], got float32[4,5]"},
      {"wrong_dtype", "expected float32[N,3], got int64[4,3]"},
      {"missing", "cannot open file"},
  };
  for (const auto& [t, why] : tensors)
    c.push_back({"run_npy_" + t, "run {dir}/good.onnx -i {dir}/" + t + ".npy -o {dir}/y.npy", 1, why});
  c.push_back({"run_npy_directory", "run {dir}/good.onnx -i {dir}/adir.npy -o {dir}/y.npy", 1, "adir.npy"});
  c.push_back({"run_too_many_inputs", "run {dir}/good.onnx -i {dir}/x.npy -i {dir}/x.npy -o {dir}/y.npy", 1, "takes 1 inputs, got 2"});
  // Output paths: refused before any work, nothing left behind.
  c.push_back({"run_output_directory", "run {dir}/good.onnx -i {dir}/x.npy -o {dir}/adir", 1, "is a directory"});
  c.push_back({"run_output_empty", "run {dir}/good.onnx -i {dir}/x.npy -o ''", 1, "output path is empty"});
  c.push_back({"run_output_missing_dir", "run {dir}/good.onnx -i {dir}/x.npy -o {dir}/no/such/y.npy", 1, "does not exist"});
  // The first output is writable, the second is not: neither may appear.
  c.push_back({"run_second_output_directory", "run {dir}/two_outputs.onnx -i {dir}/x.npy -o {dir}/y.npy -o {dir}/adir", 1, "adir: is a directory"});
  c.push_back({"run_second_output_missing_dir", "run {dir}/two_outputs.onnx -i {dir}/x.npy -o {dir}/y.npy -o {dir}/no/z.npy", 1, "does not exist"});
  c.push_back({"run_second_output_bad", "run {dir}/good.onnx -i {dir}/x.npy -o {dir}/y.npy -o {dir}/adir", 1, "has 1 outputs, got 2"});
  c.push_back({"convert_output_directory", "convert {dir}/good.onnx -o {dir}/adir", 1, "is a directory"});
  c.push_back({"convert_output_missing_dir", "convert {dir}/good.onnx -o {dir}/no/out.onnx", 1, "does not exist"});
  c.push_back({"convert_output_empty", "convert {dir}/good.onnx -o ''", 1, "output path is empty"});
  // Data directories.
  const std::vector<std::pair<std::string, std::string>> data = {
      {"data_truncated", "truncated data"}, {"data_mismatch", "7 labels for 8"},
      {"data_magic", "bad magic number"},   {"data_huge", "truncated data"},
      {"data_rank", "at most 8"},           {"data_type", "element type 0xd"},
      {"data_gzip", "gzip"},
      {"data_empty", "no images and no class folders"},
      {"data_missing", "not found (expected a data directory, an image folder or a .npy/.npz file)"},
  };
  for (const auto& [d, why] : data) {
    c.push_back({"eval_" + d, "eval {dir}/good.onnx --data {dir}/" + d, 1, why});
    c.push_back({"train_" + d, "train --model mlp --epochs 1 --data {dir}/" + d + " -o {dir}/out.onnx", 1, why});
  }
  // Image folders and NumPy files: evaluated, and calibrating a quantization.
  const std::vector<std::pair<std::string, std::string>> own = {
      {"img_empty_class", "img_empty_class/b: class folder has no images"},
      {"img_truncated", "a.jpg: truncated JPEG (the data ends before the image does)"},
      {"img_corrupt_png", "a.png: corrupt PNG"},
      {"img_not_image", "a.jpg: not a JPEG or PNG file"},
      {"npz_no_x.npz", "no 'x' array"},
      {"npz_garbage.npz", "cannot read as a .npz (zip) archive"},
      {"npz_short_y.npz", "expected 4 labels, one per sample of x"},
      {"npz_wrong_shape.npz", "has 5 inputs"},
      {"x.txt", "is a file but not .npy or .npz"},
  };
  for (const auto& [d, why] : own) {
    std::string id = d;  // a test name: letters, digits and underscores
    std::replace(id.begin(), id.end(), '.', '_');
    c.push_back({"eval_" + id, "eval {dir}/good.onnx --data {dir}/" + d, 1, why});
    c.push_back({"quantize_" + id, "quantize {dir}/good.onnx -o {dir}/out.onnx --data {dir}/" + d, 1, why});
  }
  c.push_back({"train_npz_float_zoo", "train --model mlp --epochs 1 --data {dir}/npz_good.npz -o {dir}/out.onnx", 1,
               "a zoo model takes images"});
  c.push_back({"eval_unlabeled", "eval {dir}/good.onnx --data {dir}/npz_no_y.npz", 1, "has no labels"});
  c.push_back({"eval_crop_too_big", "eval {dir}/good.onnx --data {dir}/npz_good.npz --mean 1 --std 0", 1,
               "--std: 0 is not positive"});
  // Flags.
  const std::vector<std::pair<std::string, std::string>> flags = {
      {"train --model mlp --epochs -1 -o {dir}/o.onnx", "--epochs: expected a number > 0, got '-1'"},
      {"train --model mlp --epochs nan -o {dir}/o.onnx", "--epochs"},
      {"train --model mlp --lr nan -o {dir}/o.onnx", "--lr: expected a finite number, got 'nan'"},
      {"train --model mlp --lr inf -o {dir}/o.onnx", "--lr: expected a finite number, got 'inf'"},
      {"train --model mlp --lr -0.1 -o {dir}/o.onnx", "--lr: expected a number > 0"},
      {"train --model mlp --batch 0 -o {dir}/o.onnx", "--batch"},
      {"train --model mlp --momentum 2 -o {dir}/o.onnx", "--momentum: expected a number from 0 to 1"},
      {"train --model mlp --width 0 -o {dir}/o.onnx", "--width"},
      {"--threads 1000000 zoo", "--threads: expected an integer from 0 to 1024"},
      {"--threads -2 zoo", "--threads"},
      {"zoo --classes 1", "--classes: expected a number from 2 to 100000"},
      {"zoo --width nan", "--width"},
      {"prune {dir}/good.onnx -o {dir}/o.onnx --amount nan --no-eval", "--amount"},
      {"prune {dir}/good.onnx -o {dir}/o.onnx --method bogus", "--method"},
      {"quantize {dir}/good.onnx -o {dir}/o.onnx --max-drop nan", "--max-drop: expected a finite number"},
      {"quantize {dir}/good.onnx -o {dir}/o.onnx --percentile 200", "--percentile"},
      {"distill --teacher {dir}/good.onnx --student mlp --temperature nan -o {dir}/o.onnx", "--temperature"},
      {"factorize {dir}/good.onnx -o {dir}/o.onnx --energy nan", "--energy"},
      {"bench {dir}/good.onnx --batch -5", "--batch"},
      {"info {dir}/good.onnx --bogus", "--bogus"},
      {"nosuchcommand", "nosuchcommand"},
  };
  int k = 0;
  for (const auto& [args, why] : flags) c.push_back({"flag_" + std::to_string(k++), args, kUsage, why});
  // Values that parse but are checked against each other or the model: bad input, status 1.
  const std::vector<std::pair<std::string, std::string>> values = {
      {"train --model mlp --milestones a,b --schedule multistep -o {dir}/o.onnx", "--milestones: expected an integer"},
      {"train --model nosuchnet -o {dir}/o.onnx", "nosuchnet"},
      {"prune {dir}/good.onnx -o {dir}/o.onnx --amount 1.5 --no-eval", "--amount"},
      {"prune {dir}/good.onnx -o {dir}/o.onnx --schedule iterative:0 --no-eval", "--schedule iterative:N: expected an integer from 1 to 1000"},
      {"prune {dir}/good.onnx -o {dir}/o.onnx --schedule iterative:99999999999999999999 --no-eval", "--schedule iterative:N"},
      {"prune {dir}/good.onnx -o {dir}/o.onnx --method ln-structured --layer-amount fc=abc --no-eval", "--layer-amount fc: expected a number"},
      {"--max-tensor-bytes 16 info {dir}/good.onnx", "initializer 'W': 24 bytes, over the limit of 16 (--max-tensor-bytes)"},
      {"--max-tensor-bytes 1000000 run {dir}/sparse_huge.onnx -i {dir}/x.npy -o {dir}/y.npy", "over the limit of 1000000"},
      {"sensitivity {dir}/good.onnx --sparsities 0.1,2", "--sparsities: expected a number from 0 to 1"},
      {"sensitivity {dir}/good.onnx --sparsities 0.1,nan", "--sparsities: expected a finite number"},
      {"distill --teacher {dir}/good.onnx --student mlp --teacher-weights 1,x -o {dir}/o.onnx", "--teacher-weights: expected a number"},
  };
  for (const auto& [args, why] : values) c.push_back({"value_" + std::to_string(k++), args, 1, why});
  return c;
}

std::string expand(std::string s, const std::string& dir) {
  for (size_t at; (at = s.find("{dir}")) != std::string::npos;) s.replace(at, 5, dir);
  return s;
}

std::set<std::string> listing(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::recursive_directory_iterator(dir)) names.insert(e.path().string());
  return names;
}

class Hostile : public ::testing::TestWithParam<Case> {};

}  // namespace

TEST_P(Hostile, RefusedInOneLineLeavingNothing) {
  const Case& c = GetParam();
  test_support::TempDir dir;
  make_files(dir.path);
  const auto before = listing(dir.path);
  const std::string command = std::string("exec ") + SHRINK_CLI + " " + expand(c.args, dir.path) + " </dev/null";
  auto r = test_support::run_limited(command, kTimeLimit);
  SCOPED_TRACE(command);
  ASSERT_FALSE(r.timed_out) << "took over " << kTimeLimit << " s";
  ASSERT_EQ(r.signal, 0) << "killed by signal " << r.signal << ": " << r.output;
  if (c.status == kUsage)
    EXPECT_GE(r.status, 2) << r.output;
  else
    EXPECT_EQ(r.status, c.status) << r.output;
  // libgomp may warn on its own line about environment variables; nothing else may print.
  EXPECT_EQ(r.output.rfind("shrink: error: ", 0), 0u) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  EXPECT_LT(r.output.size(), 200u) << r.output;
  EXPECT_NE(r.output.find(expand(c.expected, dir.path)), std::string::npos) << "expected '" << c.expected << "' in: " << r.output;
  EXPECT_EQ(listing(dir.path), before) << "files were left behind or changed";
  EXPECT_LT(r.max_rss_kb, kMemoryLimitKb) << "peak memory " << r.max_rss_kb / 1024 << " MiB";
}

INSTANTIATE_TEST_SUITE_P(Catalogue, Hostile, ::testing::ValuesIn(catalogue()),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });
