// Crash-safe output files. Every file shrink writes goes through here: the bytes
// go to a temporary file created exclusively (O_EXCL, a random name, mode 0644
// less the umask) in the target's directory, are flushed to disk (fsync), and
// the temporary is renamed over the target, then the directory is synced. An
// interrupted run leaves the previous file or the new one, never half of one;
// a failed write removes its temporary; a symlink planted at any predictable
// name is never written through (the temporary's name cannot be guessed and is
// created, not opened; rename replaces a symlink at the target, it does not
// follow it).
#pragma once
#include <memory>
#include <string>
#include <vector>

namespace shrink {

// One output file under construction. Nothing is visible at `path` until commit().
// Destroying an uncommitted AtomicFile removes its temporary.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);  // creates the temporary; throws Error naming path
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  AtomicFile(AtomicFile&& other) noexcept;

  void write(const void* data, size_t size);  // throws Error naming path (disk full, ...)
  void write(const std::string& bytes) { write(bytes.data(), bytes.size()); }
  // fsync, rename over the target, fsync the directory. After it the temporary is gone.
  void commit();
  const std::string& path() const { return path_; }
  const std::string& temporary_path() const { return tmp_; }

 private:
  void discard() noexcept;
  std::string path_, tmp_;
  int fd_ = -1;
};

// The whole file at once.
void write_file_atomically(const std::string& path, const std::string& bytes);

// The whole file in a string of its size, read once (a stringstream grows by doubling
// and str() copies: three times the file at the peak). A pipe or device is read to its
// end; a directory or an unreadable file is an error naming `path`.
std::string read_file(const std::string& path);

// Several outputs, all or nothing: every file is written to its temporary first;
// only when all writes succeeded are they renamed into place (in order).
class AtomicFileSet {
 public:
  AtomicFile& add(const std::string& path);
  void commit();

 private:
  std::vector<std::unique_ptr<AtomicFile>> files_;
};

}  // namespace shrink
