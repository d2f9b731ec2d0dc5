#include "shrink/io/npz.h"

#include <zip.h>

#include <memory>

#include "shrink/core/error.h"
#include "shrink/io/npy.h"

namespace shrink::io {

namespace {

using Archive = std::unique_ptr<zip_t, decltype(&zip_discard)>;

std::map<std::string, at::Tensor> read_members(zip_t* archive, const std::string& path) {
  std::map<std::string, at::Tensor> out;
  zip_int64_t n = zip_get_num_entries(archive, 0);
  for (zip_int64_t i = 0; i < n; ++i) {
    zip_stat_t st;
    zip_stat_init(&st);
    SHRINK_CHECK(zip_stat_index(archive, i, 0, &st) == 0 && (st.valid & ZIP_STAT_NAME) && (st.valid & ZIP_STAT_SIZE),
                 path, ": cannot read member ", i, " of the archive (", zip_strerror(archive), ")");
    std::string name = st.name;
    std::string label = path + "[" + name + "]";
    SHRINK_CHECK(st.size <= kMaxNpzMemberBytes, label, ": member expands to ", st.size, " bytes (the limit is ",
                 kMaxNpzMemberBytes >> 30, " GiB)");
    std::unique_ptr<zip_file_t, decltype(&zip_fclose)> f(zip_fopen_index(archive, i, 0), zip_fclose);
    SHRINK_CHECK(f, label, ": cannot open archive member (", zip_strerror(archive), ")");
    // Read in pieces, so a member whose declared size is a lie costs what it holds.
    std::string bytes;
    char buf[1 << 16];
    while (true) {
      zip_int64_t got = zip_fread(f.get(), buf, sizeof buf);
      SHRINK_CHECK(got >= 0, label, ": corrupt or truncated archive member (", zip_file_strerror(f.get()), ")");
      if (got == 0) break;
      bytes.append(buf, static_cast<size_t>(got));
      SHRINK_CHECK(bytes.size() <= st.size, label, ": member holds more than the ", st.size, " bytes it declares");
    }
    SHRINK_CHECK(bytes.size() == st.size, label, ": truncated archive member (", bytes.size(), " of ", st.size,
                 " bytes)");
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".npy") == 0) name.resize(name.size() - 4);
    out[name] = read_npy_bytes(bytes, label);
  }
  return out;
}

[[noreturn]] void open_failed(const std::string& path, zip_error_t* error) {
  std::string why = zip_error_strerror(error);
  zip_error_fini(error);
  fail(path, ": cannot read as a .npz (zip) archive (", why, ")");
}

}  // namespace

std::map<std::string, at::Tensor> read_npz(const std::string& path) {
  int code = 0;
  Archive archive(zip_open(path.c_str(), ZIP_RDONLY, &code), zip_discard);
  if (!archive) {
    zip_error_t error;
    zip_error_init_with_code(&error, code);
    open_failed(path, &error);
  }
  return read_members(archive.get(), path);
}

std::map<std::string, at::Tensor> read_npz_bytes(const std::string& bytes, const std::string& label) {
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* src = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error);
  if (!src) open_failed(label, &error);
  Archive archive(zip_open_from_source(src, ZIP_RDONLY, &error), zip_discard);
  if (!archive) {
    zip_source_free(src);
    open_failed(label, &error);
  }
  zip_error_fini(&error);
  return read_members(archive.get(), label);
}

}  // namespace shrink::io
