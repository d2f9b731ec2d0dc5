#include "shrink/io/npy.h"

#include <ATen/ATen.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <regex>

#include "shrink/core/error.h"

namespace shrink::io {
namespace {

struct DtypeCode {
  const char* code;
  at::ScalarType type;
};
constexpr DtypeCode kCodes[] = {
    {"<f4", at::kFloat}, {"<f8", at::kDouble}, {"<f2", at::kHalf}, {"<i8", at::kLong},
    {"<i4", at::kInt},   {"<i2", at::kShort},  {"|i1", at::kChar}, {"|u1", at::kByte},
    {"|b1", at::kBool},
};

const char* code_of(at::ScalarType t) {
  for (const auto& c : kCodes)
    if (c.type == t) return c.code;
  fail("tensor type ", c10::toString(t), " cannot be written as .npy");
}

std::string header_field(const std::string& header, const std::string& key, const std::string& path) {
  std::smatch m;
  std::regex re("'" + key + "'\\s*:\\s*('[^']*'|True|False|\\([^)]*\\))");
  SHRINK_CHECK(std::regex_search(header, m, re), path, ": .npy header has no '", key, "'");
  return m[1];
}

}  // namespace

at::Tensor read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  SHRINK_CHECK(in, path, ": cannot open file");
  char magic[8];
  SHRINK_CHECK(in.read(magic, 8) && std::memcmp(magic, "\x93NUMPY", 6) == 0, path,
               ": not a .npy file (bad magic)");
  int major = static_cast<unsigned char>(magic[6]);
  uint32_t header_len = 0;
  unsigned char len_bytes[4] = {0, 0, 0, 0};
  SHRINK_CHECK(in.read(reinterpret_cast<char*>(len_bytes), major == 1 ? 2 : 4), path,
               ": truncated .npy header");
  header_len = len_bytes[0] | (len_bytes[1] << 8) | (len_bytes[2] << 16) | (uint32_t(len_bytes[3]) << 24);
  std::string header(header_len, '\0');
  SHRINK_CHECK(in.read(header.data(), header_len), path, ": truncated .npy header");

  std::string descr = header_field(header, "descr", path);
  descr = descr.substr(1, descr.size() - 2);
  if (descr == "<b1") descr = "|b1";
  if (descr == "<u1") descr = "|u1";
  if (descr == "<i1") descr = "|i1";
  SHRINK_CHECK(header_field(header, "fortran_order", path) == "False", path,
               ": Fortran-order arrays are not supported (save with C order)");
  at::ScalarType type = at::kFloat;
  bool known = false;
  for (const auto& c : kCodes)
    if (descr == c.code) type = c.type, known = true;
  SHRINK_CHECK(known, path, ": dtype '", descr,
               "' is not supported (expected little-endian float16/32/64, int8/16/32/64, uint8 or bool)");
  std::string shape_text = header_field(header, "shape", path);
  std::vector<int64_t> shape;
  std::regex num("\\d+");
  for (auto it = std::sregex_iterator(shape_text.begin(), shape_text.end(), num);
       it != std::sregex_iterator(); ++it)
    shape.push_back(std::stoll(it->str()));

  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(type));
  size_t bytes = t.numel() * t.element_size();
  SHRINK_CHECK(in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(bytes)) ||
                   bytes == 0,
               path, ": truncated data (expected ", bytes, " bytes for shape ", shape_text, ")");
  return t;
}

void write_npy(const std::string& path, const at::Tensor& tensor) {
  at::Tensor t = tensor.detach().contiguous().cpu();
  std::string shape = "(";
  for (int64_t i = 0; i < t.dim(); ++i) shape += std::to_string(t.size(i)) + (t.dim() == 1 ? "," : (i + 1 < t.dim() ? ", " : ""));
  shape += ")";
  std::string header = std::string("{'descr': '") + code_of(t.scalar_type()) +
                       "', 'fortran_order': False, 'shape': " + shape + ", }";
  size_t total = 10 + header.size() + 1;
  header += std::string((64 - total % 64) % 64, ' ') + "\n";
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    SHRINK_CHECK(out, path, ": cannot write file");
    out.write("\x93NUMPY\x01\x00", 8);
    uint16_t len = static_cast<uint16_t>(header.size());
    char len_bytes[2] = {static_cast<char>(len & 0xff), static_cast<char>(len >> 8)};
    out.write(len_bytes, 2);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.numel() * t.element_size()));
    SHRINK_CHECK(out.good(), path, ": write failed");
  }
  SHRINK_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, path, ": cannot move the written file into place");
}

}  // namespace shrink::io
