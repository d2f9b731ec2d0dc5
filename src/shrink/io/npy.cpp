#include "shrink/io/npy.h"

#include <ATen/ATen.h>

#include <cstring>
#include <fstream>
#include <limits>
#include <string_view>

#include "shrink/core/atomic_file.h"
#include "shrink/core/error.h"
#include "shrink/core/parse.h"

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

struct NpyHeader {
  at::ScalarType type = at::kFloat;
  std::vector<int64_t> shape;
  size_t data_offset = 0;
  size_t data_bytes = 0;
};

// The header dictionary, a Python literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// parsed by a scanner that looks at each character once (no regex, no recursion).
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& label) : s_(text), label_(label) {}

  NpyHeader parse(size_t data_offset, size_t available) {
    NpyHeader h;
    bool have_descr = false, have_order = false, have_shape = false;
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') break;
      std::string key = string_literal("a key");
      expect(':');
      skip_space();
      if (key == "descr") {
        SHRINK_CHECK(!have_descr, label_, ": .npy header repeats 'descr'");
        have_descr = true;
        h.type = dtype(string_literal("the dtype"));
      } else if (key == "fortran_order") {
        SHRINK_CHECK(!have_order, label_, ": .npy header repeats 'fortran_order'");
        have_order = true;
        bool fortran = boolean();
        SHRINK_CHECK(!fortran, label_, ": Fortran-order arrays are not supported (save with C order)");
      } else if (key == "shape") {
        SHRINK_CHECK(!have_shape, label_, ": .npy header repeats 'shape'");
        have_shape = true;
        h.shape = shape();
      } else {
        fail(label_, ": .npy header has an unexpected key ", quoted_excerpt(key),
             " (expected descr, fortran_order, shape)");
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      SHRINK_CHECK(peek() == '}', label_, ": .npy header: expected ',' or '}' at byte ", pos_);
    }
    ++pos_;
    for (; pos_ < s_.size(); ++pos_)
      SHRINK_CHECK(s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t' || s_[pos_] == '\0', label_,
                   ": .npy header has text after its dictionary");
    SHRINK_CHECK(have_descr, label_, ": .npy header has no 'descr'");
    SHRINK_CHECK(have_order, label_, ": .npy header has no 'fortran_order'");
    SHRINK_CHECK(have_shape, label_, ": .npy header has no 'shape'");

    // The data size, with every product checked for overflow, against what the file holds.
    const size_t element = c10::elementSize(h.type);
    size_t bytes = element;
    for (int64_t d : h.shape) {
      if (d != 0 && bytes > std::numeric_limits<size_t>::max() / static_cast<size_t>(d))
        fail(label_, ": shape ", shape_text(h.shape), " is too large");
      bytes *= static_cast<size_t>(d);
    }
    SHRINK_CHECK(bytes <= available, label_, ": truncated data (shape ", shape_text(h.shape), " needs ", bytes,
                 " bytes, the file has ", available, ")");
    h.data_offset = data_offset;
    h.data_bytes = bytes;
    return h;
  }

 private:
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n')) ++pos_;
  }
  void expect(char c) {
    skip_space();
    SHRINK_CHECK(peek() == c, label_, ": .npy header: expected '", c, "' at byte ", pos_);
    ++pos_;
  }
  std::string string_literal(const char* what) {
    skip_space();
    char q = peek();
    SHRINK_CHECK(q == '\'' || q == '"', label_, ": .npy header: expected ", what, " (a quoted string) at byte ",
                 pos_);
    size_t end = s_.find(q, pos_ + 1);
    SHRINK_CHECK(end != std::string_view::npos, label_, ": .npy header: unterminated string at byte ", pos_);
    std::string out(s_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return out;
  }
  bool boolean() {
    if (s_.substr(pos_, 4) == "True") return pos_ += 4, true;
    if (s_.substr(pos_, 5) == "False") return pos_ += 5, false;
    fail(label_, ": .npy header: fortran_order must be True or False");
  }
  at::ScalarType dtype(std::string descr) {
    if (descr == "<b1") descr = "|b1";
    if (descr == "<u1") descr = "|u1";
    if (descr == "<i1") descr = "|i1";
    for (const auto& c : kCodes)
      if (descr == c.code) return c.type;
    fail(label_, ": dtype ", quoted_excerpt(descr),
         " is not supported (expected little-endian float16/32/64, int8/16/32/64, uint8 or bool)");
  }
  std::vector<int64_t> shape() {
    expect('(');
    std::vector<int64_t> dims;
    while (true) {
      skip_space();
      if (peek() == ')') break;
      SHRINK_CHECK(peek() >= '0' && peek() <= '9', label_,
                   ": .npy header: shape must be a tuple of non-negative integers (byte ", pos_, ")");
      int64_t v = 0;
      while (peek() >= '0' && peek() <= '9') {
        SHRINK_CHECK(v <= (std::numeric_limits<int64_t>::max() - 9) / 10, label_,
                     ": .npy header: a dimension overflows a 64-bit integer");
        v = v * 10 + (peek() - '0');
        ++pos_;
      }
      dims.push_back(v);
      SHRINK_CHECK(static_cast<int64_t>(dims.size()) <= kMaxNpyDims, label_, ": .npy shape has more than ",
                   kMaxNpyDims, " dimensions");
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      SHRINK_CHECK(peek() == ')', label_, ": .npy header: expected ',' or ')' in the shape at byte ", pos_);
    }
    ++pos_;
    return dims;
  }
  static std::string shape_text(const std::vector<int64_t>& shape) {
    std::string out = "(";
    for (size_t i = 0; i < shape.size() && i < 8; ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
    if (shape.size() > 8) out += ", ...";
    return out + ")";
  }

  std::string_view s_;
  const std::string& label_;
  size_t pos_ = 0;
};

// The preamble (magic, version, header length) and the header, from the first
// bytes of a file of `total` bytes.
NpyHeader parse_npy(std::string_view prefix, size_t total, const std::string& label) {
  SHRINK_CHECK(prefix.size() >= 8 && std::memcmp(prefix.data(), "\x93NUMPY", 6) == 0, label,
               ": not a .npy file (bad magic)");
  const int major = static_cast<unsigned char>(prefix[6]);
  SHRINK_CHECK(major >= 1 && major <= 3, label, ": .npy format version ", major, " is not supported (expected 1 to 3)");
  const size_t len_size = major == 1 ? 2 : 4;
  SHRINK_CHECK(prefix.size() >= 8 + len_size, label, ": truncated .npy header");
  const auto* b = reinterpret_cast<const unsigned char*>(prefix.data()) + 8;
  uint64_t header_len = b[0] | (b[1] << 8);
  if (len_size == 4) header_len |= (uint64_t(b[2]) << 16) | (uint64_t(b[3]) << 24);
  SHRINK_CHECK(header_len <= kMaxNpyHeaderBytes, label, ": .npy header of ", header_len,
               " bytes is larger than numpy writes (at most ", kMaxNpyHeaderBytes, ")");
  const size_t data_offset = 8 + len_size + header_len;
  SHRINK_CHECK(data_offset <= total && data_offset <= prefix.size(), label, ": truncated .npy header (",
               header_len, " bytes declared, the file has ", total, " in all)");
  HeaderParser parser(prefix.substr(8 + len_size, header_len), label);
  return parser.parse(data_offset, total - data_offset);
}

}  // namespace

at::Tensor read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  SHRINK_CHECK(in, path, ": cannot open file");
  const std::streamoff end = in.tellg();
  SHRINK_CHECK(end >= 0, path, ": cannot read file (not a regular file?)");
  const size_t total = static_cast<size_t>(end);
  std::string prefix(std::min<size_t>(total, 12 + kMaxNpyHeaderBytes), '\0');
  in.seekg(0);
  SHRINK_CHECK(in.read(prefix.data(), static_cast<std::streamsize>(prefix.size())), path, ": cannot read file");
  NpyHeader h = parse_npy(prefix, total, path);
  at::Tensor t = at::empty(h.shape, at::TensorOptions().dtype(h.type));
  in.seekg(static_cast<std::streamoff>(h.data_offset));
  SHRINK_CHECK(in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(h.data_bytes)) ||
                   h.data_bytes == 0,
               path, ": truncated data");
  return t;
}

at::Tensor read_npy_bytes(const std::string& bytes, const std::string& label) {
  NpyHeader h = parse_npy(bytes, bytes.size(), label);
  at::Tensor t = at::empty(h.shape, at::TensorOptions().dtype(h.type));
  if (h.data_bytes) std::memcpy(t.data_ptr(), bytes.data() + h.data_offset, h.data_bytes);
  return t;
}

namespace {
// The preamble and header dictionary of a C-order little-endian array (format 1.0).
std::string npy_header(const at::Tensor& t) {
  std::string shape = "(";
  for (int64_t i = 0; i < t.dim(); ++i) shape += std::to_string(t.size(i)) + (t.dim() == 1 ? "," : (i + 1 < t.dim() ? ", " : ""));
  shape += ")";
  std::string header = std::string("{'descr': '") + code_of(t.scalar_type()) +
                       "', 'fortran_order': False, 'shape': " + shape + ", }";
  size_t total = 10 + header.size() + 1;
  header += std::string((64 - total % 64) % 64, ' ') + "\n";
  SHRINK_CHECK(header.size() <= 65535, "a tensor of ", t.dim(), " dimensions cannot be written as .npy");
  std::string out("\x93NUMPY\x01\x00", 8);
  const auto len = static_cast<uint16_t>(header.size());
  out += static_cast<char>(len & 0xff);
  out += static_cast<char>(len >> 8);
  return out + header;
}
}  // namespace

std::string npy_bytes(const at::Tensor& tensor) {
  at::Tensor t = tensor.detach().contiguous().cpu();
  std::string out = npy_header(t);
  out.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  return out;
}

void write_npy(AtomicFile& file, const at::Tensor& tensor) {
  at::Tensor t = tensor.detach().contiguous().cpu();
  file.write(npy_header(t));
  file.write(t.data_ptr(), t.numel() * t.element_size());
}

void write_npy(const std::string& path, const at::Tensor& tensor) {
  at::Tensor t = tensor.detach().contiguous().cpu();
  const std::string header = npy_header(t);  // before the file: an unwritable tensor leaves nothing
  AtomicFile file(path);
  file.write(header);
  file.write(t.data_ptr(), t.numel() * t.element_size());
  file.commit();
}

}  // namespace shrink::io
