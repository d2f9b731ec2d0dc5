#include "shrink/onnx/external_data.h"

#include <c10/core/ScalarType.h>
#include <fcntl.h>
#include <onnx/onnx_pb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "shrink/core/atomic_file.h"
#include "shrink/core/error.h"
#include "shrink/core/limits.h"
#include "shrink/core/parse.h"
#include "shrink/ir/tensor_type.h"

namespace shrink::onnx_io {
namespace {

using Visit = std::function<void(onnx::TensorProto&, const std::string& where)>;

// Every tensor of the main graph that can carry data: initializers (and the values of
// sparse ones) and the tensors of Constant nodes.
void for_each_tensor(onnx::ModelProto& model, const Visit& visit) {
  onnx::GraphProto* g = model.mutable_graph();
  for (auto& t : *g->mutable_initializer()) visit(t, msg("initializer '", t.name(), "'"));
  for (auto& s : *g->mutable_sparse_initializer()) {
    visit(*s.mutable_values(), msg("sparse initializer '", s.values().name(), "' (values)"));
    visit(*s.mutable_indices(), msg("sparse initializer '", s.values().name(), "' (indices)"));
  }
  for (auto& n : *g->mutable_node())
    for (auto& a : *n.mutable_attribute())
      if (a.has_t()) visit(*a.mutable_t(), msg("node '", n.name(), "' (", n.op_type(), "): attribute '", a.name(), "'"));
}

std::string directory_of(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string real_path(const std::string& path) {
  std::unique_ptr<char, decltype(&std::free)> p(::realpath(path.c_str(), nullptr), &std::free);
  return p ? std::string(p.get()) : std::string();
}

// The location, checked to stay inside `dir` (ONNX Runtime refuses the same).
std::string resolve_location(const std::string& dir, const std::string& location, const std::string& where) {
  SHRINK_CHECK(!location.empty(), where, ": external data has no location");
  SHRINK_CHECK(location[0] != '/', where, ": external data location ", quoted_excerpt(location),
               " is absolute (expected a file name relative to the model's directory)");
  size_t start = 0;
  while (start <= location.size()) {
    size_t end = location.find('/', start);
    if (end == std::string::npos) end = location.size();
    SHRINK_CHECK(location.compare(start, end - start, "..") != 0, where,
                 ": external data location ", quoted_excerpt(location), " leads out of the model's directory");
    start = end + 1;
  }
  const std::string path = dir + "/" + location;
  const std::string real = real_path(path), real_dir = real_path(dir);
  SHRINK_CHECK(!real.empty(), where, ": cannot open external data file ", path, ": ", std::strerror(errno));
  SHRINK_CHECK(!real_dir.empty() && (real == real_dir || real.compare(0, real_dir.size() + 1, real_dir + "/") == 0),
               where,
               ": external data file ", quoted_excerpt(location), " is a link leading out of the model's directory");
  return real;
}

class ExternalFiles {
 public:
  ~ExternalFiles() {
    for (auto& [path, file] : open_) ::close(file.fd);
  }

  // The bytes [offset, offset + length) of `path`; length -1: to the end of the file.
  void read(const std::string& path, int64_t offset, int64_t length, int64_t want, std::string& out,
            const std::string& where) {
    const File& f = open(path, where);
    SHRINK_CHECK(offset <= f.size, where, ": external data offset ", offset, " is past the end of ", path, " (",
                 f.size, " bytes)");
    if (length < 0) length = f.size - offset;
    SHRINK_CHECK(length == want, where, ": external data holds ", length, " bytes, its type and shape need ", want);
    SHRINK_CHECK(length <= f.size - offset, where, ": external data [", offset, ", ", offset + length,
                 ") runs past the end of ", path, " (", f.size, " bytes)");
    out.resize(static_cast<size_t>(length));
    int64_t done = 0;
    while (done < length) {
      ssize_t n = ::pread(f.fd, out.data() + done, static_cast<size_t>(length - done), offset + done);
      if (n < 0 && errno == EINTR) continue;
      SHRINK_CHECK(n > 0, where, ": cannot read external data file ", path, ": ",
                   n < 0 ? std::strerror(errno) : "the file shrank");
      done += n;
    }
  }

 private:
  struct File {
    int fd = -1;
    int64_t size = 0;
  };

  const File& open(const std::string& path, const std::string& where) {
    auto it = open_.find(path);
    if (it != open_.end()) return it->second;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    SHRINK_CHECK(fd >= 0, where, ": cannot open external data file ", path, ": ", std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      fail(where, ": external data file ", path, " is not a regular file");
    }
    return open_[path] = File{fd, static_cast<int64_t>(st.st_size)};
  }

  std::map<std::string, File> open_;
};

// The bytes a tensor's type and shape need, checked against the allocation cap.
int64_t tensor_bytes(const onnx::TensorProto& t, const std::string& where) {
  at::ScalarType type;
  try {
    type = ir::scalar_type_from_onnx(t.data_type());
  } catch (const Error& e) {
    fail(where, ": ", e.what());
  }
  std::vector<int64_t> dims(t.dims().begin(), t.dims().end());
  for (int64_t d : dims) SHRINK_CHECK(d >= 0, where, ": negative extent ", d);
  return checked_tensor_bytes(dims, static_cast<int64_t>(c10::elementSize(type)), where);
}

}  // namespace

bool has_external_data(const onnx::ModelProto& model) {
  bool any = false;
  for_each_tensor(const_cast<onnx::ModelProto&>(model), [&](onnx::TensorProto& t, const std::string&) {
    any = any || t.data_location() == onnx::TensorProto::EXTERNAL;
  });
  return any;
}

void load_external_data(onnx::ModelProto& model, const std::string& model_path) {
  const std::string dir = directory_of(model_path);
  ExternalFiles files;
  for_each_tensor(model, [&](onnx::TensorProto& t, const std::string& where) {
    if (t.data_location() != onnx::TensorProto::EXTERNAL) return;
    std::string location;
    int64_t offset = 0, length = -1;
    for (const auto& entry : t.external_data()) {
      const std::string what = msg(where, ": external data '", entry.key(), "'");
      if (entry.key() == "location") location = entry.value();
      else if (entry.key() == "offset") offset = parse_int(entry.value(), what, 0);
      else if (entry.key() == "length") length = parse_int(entry.value(), what, 0);
      // "checksum" (SHA-1, optional) and other keys carry nothing needed to read the bytes.
    }
    const int64_t want = tensor_bytes(t, where);
    files.read(resolve_location(dir, location, where), offset, length, want, *t.mutable_raw_data(), where);
    t.clear_external_data();
    t.clear_data_location();
  });
}

int64_t model_bytes_on_disk(const std::string& model_path) {
  struct stat st {};
  if (::stat(model_path.c_str(), &st) != 0) return 0;
  int64_t total = static_cast<int64_t>(st.st_size);
  onnx::ModelProto model;
  {
    std::ifstream in(model_path, std::ios::binary);
    if (!in || !model.ParseFromIstream(&in)) return total;
  }
  std::set<std::string> files;
  for_each_tensor(model, [&](onnx::TensorProto& t, const std::string& where) {
    if (t.data_location() != onnx::TensorProto::EXTERNAL) return;
    for (const auto& entry : t.external_data())
      if (entry.key() == "location") {
        try {
          files.insert(resolve_location(directory_of(model_path), entry.value(), where));
        } catch (const Error&) {
        }
      }
  });
  for (const std::string& f : files)
    if (::stat(f.c_str(), &st) == 0 && S_ISREG(st.st_mode)) total += static_cast<int64_t>(st.st_size);
  return total;
}

bool ExternalDataWriter::store(onnx::TensorProto& t) {
  static const char zeros[64] = {};
  if (!t.has_raw_data() || static_cast<int64_t>(t.raw_data().size()) < threshold_) return false;
  const int64_t pad = (64 - offset_ % 64) % 64;  // aligned, so a reader may map the file
  data_.write(zeros, static_cast<size_t>(pad));
  offset_ += pad;
  const int64_t length = static_cast<int64_t>(t.raw_data().size());
  data_.write(t.raw_data().data(), t.raw_data().size());
  for (auto [key, value] : {std::pair<const char*, std::string>{"location", location_},
                            {"offset", std::to_string(offset_)},
                            {"length", std::to_string(length)}}) {
    auto* entry = t.add_external_data();
    entry->set_key(key);
    entry->set_value(value);
  }
  std::string().swap(*t.mutable_raw_data());
  t.clear_raw_data();
  t.set_data_location(onnx::TensorProto::EXTERNAL);
  offset_ += length;
  return true;
}

int64_t store_external_data(onnx::ModelProto& model, AtomicFile& data, const std::string& location,
                            int64_t threshold) {
  ExternalDataWriter writer(data, location, threshold);
  for (auto& t : *model.mutable_graph()->mutable_initializer()) writer.store(t);
  return writer.bytes();
}

}  // namespace shrink::onnx_io
