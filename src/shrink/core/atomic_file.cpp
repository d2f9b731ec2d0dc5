#include "shrink/core/atomic_file.h"


#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "shrink/core/error.h"

namespace shrink {
namespace {

namespace fs = std::filesystem;

std::string directory_of(const std::string& path) {
  fs::path dir = fs::path(path).parent_path();
  return dir.empty() ? "." : dir.string();
}

// ".NAME.XXXXXXXXXXXX.tmp" beside the target: hidden, and unguessable.
std::string temporary_name(const std::string& path) {
  static thread_local std::mt19937_64 rng{std::random_device{}() ^
                                          (static_cast<uint64_t>(::getpid()) << 32)};
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string suffix(12, 'x');
  for (char& c : suffix) c = kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
  fs::path p(path);
  std::string base = p.filename().string();
  if (base.size() > 200) base.resize(200);  // the temporary's name must fit NAME_MAX too
  return (p.parent_path() / ("." + base + "." + suffix + ".tmp")).string();
}

void sync_directory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // not fatal: the data itself is synced
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  SHRINK_CHECK(!path_.empty(), "output path is empty");
  std::error_code ec;
  SHRINK_CHECK(!fs::is_directory(path_, ec), path_, ": is a directory (expected a file name)");
  const std::string dir = directory_of(path_);
  SHRINK_CHECK(fs::is_directory(dir, ec), path_, ": directory '", dir, "' does not exist");
  for (int attempt = 0; attempt < 16 && fd_ < 0; ++attempt) {
    tmp_ = temporary_name(path_);
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd_ < 0 && errno != EEXIST) break;
  }
  SHRINK_CHECK(fd_ >= 0, path_, ": cannot create a file in '", dir, "': ", std::strerror(errno));
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : path_(std::move(other.path_)), tmp_(std::move(other.tmp_)), fd_(other.fd_) {
  other.fd_ = -1;
  other.tmp_.clear();
}

AtomicFile::~AtomicFile() { discard(); }

void AtomicFile::discard() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
  tmp_.clear();
}

void AtomicFile::write(const void* data, size_t size) {
  SHRINK_CHECK(fd_ >= 0, path_, ": file already committed or discarded");
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd_, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      discard();
      fail(path_, ": write failed: ", std::strerror(err));
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
}

void AtomicFile::commit() {
  SHRINK_CHECK(fd_ >= 0, path_, ": file already committed or discarded");
  if (::fsync(fd_) != 0 || ::close(fd_) != 0) {
    int err = errno;
    fd_ = -1;
    discard();
    fail(path_, ": write failed: ", std::strerror(err));
  }
  fd_ = -1;
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    int err = errno;
    discard();
    fail(path_, ": cannot move the written file into place: ", std::strerror(err));
  }
  tmp_.clear();
  sync_directory(directory_of(path_));
}

void write_file_atomically(const std::string& path, const std::string& bytes) {
  AtomicFile file(path);
  file.write(bytes);
  file.commit();
}

AtomicFile& AtomicFileSet::add(const std::string& path) {
  files_.push_back(std::make_unique<AtomicFile>(path));
  return *files_.back();
}

void AtomicFileSet::commit() {
  for (auto& f : files_) f->commit();
  files_.clear();
}

std::string read_file(const std::string& path) {
  std::error_code ec;
  SHRINK_CHECK(!std::filesystem::is_directory(path, ec), path, ": is a directory, expected a file");
  const bool regular = std::filesystem::is_regular_file(path, ec);
  std::ifstream in(path, std::ios::binary | (regular ? std::ios::ate : std::ios::openmode{}));
  SHRINK_CHECK(in, path, ": cannot open file");
  if (!regular)  // a pipe or a device: read to its end
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  const std::streamoff size = in.tellg();
  SHRINK_CHECK(size >= 0, path, ": cannot read file");
  std::string bytes(static_cast<size_t>(size), '\0');
  in.seekg(0);
  SHRINK_CHECK(in.read(bytes.data(), size), path, ": cannot read file");
  return bytes;
}

}  // namespace shrink
