#include "shrink/io/npz.h"

#include <zip.h>

#include <memory>

#include "shrink/core/error.h"
#include "shrink/io/npy.h"

namespace shrink::io {

std::map<std::string, at::Tensor> read_npz(const std::string& path) {
  int code = 0;
  std::unique_ptr<zip_t, decltype(&zip_discard)> archive(zip_open(path.c_str(), ZIP_RDONLY, &code), zip_discard);
  if (!archive) {
    zip_error_t error;
    zip_error_init_with_code(&error, code);
    std::string why = zip_error_strerror(&error);
    zip_error_fini(&error);
    fail(path, ": cannot read as a .npz (zip) archive (", why, ")");
  }
  std::map<std::string, at::Tensor> out;
  zip_int64_t n = zip_get_num_entries(archive.get(), 0);
  for (zip_int64_t i = 0; i < n; ++i) {
    zip_stat_t st;
    zip_stat_init(&st);
    SHRINK_CHECK(zip_stat_index(archive.get(), i, 0, &st) == 0 && (st.valid & ZIP_STAT_NAME) && (st.valid & ZIP_STAT_SIZE),
                 path, ": cannot read member ", i, " of the archive (", zip_strerror(archive.get()), ")");
    std::string name = st.name;
    std::string label = path + "[" + name + "]";
    SHRINK_CHECK(st.size <= kMaxNpzMemberBytes, label, ": member expands to ", st.size, " bytes (the limit is ",
                 kMaxNpzMemberBytes >> 30, " GiB)");
    std::unique_ptr<zip_file_t, decltype(&zip_fclose)> f(zip_fopen_index(archive.get(), i, 0), zip_fclose);
    SHRINK_CHECK(f, label, ": cannot open archive member (", zip_strerror(archive.get()), ")");
    std::string bytes(st.size, '\0');
    zip_int64_t got = bytes.empty() ? 0 : zip_fread(f.get(), bytes.data(), bytes.size());
    SHRINK_CHECK(got == static_cast<zip_int64_t>(bytes.size()), label, ": corrupt or truncated archive member (",
                 got < 0 ? zip_file_strerror(f.get()) : "short read", ")");
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".npy") == 0) name.resize(name.size() - 4);
    out[name] = read_npy_bytes(bytes, label);
  }
  return out;
}

}  // namespace shrink::io
