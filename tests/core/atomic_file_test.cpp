// Crash-safe writes: exclusive unguessable temporaries, nothing left on failure,
// nothing written through planted symlinks, several files all or nothing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "shrink/core/atomic_file.h"
#include "shrink/core/error.h"
#include "support/onnx_builder.h"

using namespace shrink;
namespace fs = std::filesystem;

namespace {
std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
std::set<std::string> listing(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}
}  // namespace

TEST(AtomicFile, NothingVisibleUntilCommitThenTheWholeFile) {
  test_support::TempDir dir;
  const std::string out = dir.file("model.onnx");
  std::ofstream(out) << "previous";
  AtomicFile f(out);
  f.write("new ");
  EXPECT_EQ(read_all(out), "previous");  // an interrupted run leaves the old file
  f.write("contents");
  f.commit();
  EXPECT_EQ(read_all(out), "new contents");
  EXPECT_EQ(listing(dir.path), (std::set<std::string>{"model.onnx"}));
}

TEST(AtomicFile, DestroyedUncommittedLeavesNothing) {
  test_support::TempDir dir;
  {
    AtomicFile f(dir.file("out.npy"));
    f.write("partial");
    EXPECT_TRUE(fs::exists(f.temporary_path()));
  }
  EXPECT_TRUE(listing(dir.path).empty());
}

TEST(AtomicFile, TemporariesAreUniqueAndNeverThePredictableName) {
  test_support::TempDir dir;
  AtomicFile a(dir.file("out.npy")), b(dir.file("out.npy"));
  EXPECT_NE(a.temporary_path(), b.temporary_path());
  EXPECT_NE(a.temporary_path(), dir.file("out.npy.tmp"));
  EXPECT_EQ(fs::path(a.temporary_path()).parent_path(), fs::path(dir.path));  // same directory: rename is atomic
}

TEST(AtomicFile, PlantedSymlinksAreNotWrittenThrough) {
  test_support::TempDir dir;
  const std::string victim = dir.file("victim");
  std::ofstream(victim) << "precious";
  // The name the old code used for its temporary, and the target itself.
  fs::create_symlink(victim, dir.file("out.npy.tmp"));
  fs::create_symlink(victim, dir.file("out2.npy"));
  write_file_atomically(dir.file("out.npy"), "data");
  write_file_atomically(dir.file("out2.npy"), "data2");
  EXPECT_EQ(read_all(victim), "precious");
  EXPECT_EQ(read_all(dir.file("out.npy")), "data");
  EXPECT_FALSE(fs::is_symlink(dir.file("out2.npy")));  // the link was replaced, its target untouched
  EXPECT_EQ(read_all(dir.file("out2.npy")), "data2");
}

TEST(AtomicFile, BadTargetsFailWithTheirNameAndLeaveNothing) {
  test_support::TempDir dir;
  fs::create_directory(dir.file("sub"));
  try {
    write_file_atomically(dir.file("sub"), "x");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), dir.file("sub") + ": is a directory (expected a file name)");
  }
  EXPECT_THROW(write_file_atomically("", "x"), Error);
  EXPECT_THROW(write_file_atomically(dir.file("missing/x.onnx"), "x"), Error);
  if (::geteuid() != 0) {  // root writes anywhere: the permission case only means something for others
    fs::permissions(dir.file("sub"), fs::perms::owner_read | fs::perms::owner_exec);
    EXPECT_THROW(write_file_atomically(dir.file("sub/x"), "x"), Error);
  }
  EXPECT_EQ(listing(dir.path), (std::set<std::string>{"sub"}));
  EXPECT_TRUE(listing(dir.file("sub")).empty());
}

TEST(AtomicFileSet, AllOrNothing) {
  test_support::TempDir dir;
  {
    AtomicFileSet set;
    set.add(dir.file("a.npy")).write("a");
    EXPECT_THROW(set.add(dir.file("missing/b.npy")), Error);  // the second output cannot be made
  }
  EXPECT_TRUE(listing(dir.path).empty());  // so the first is not written either
  AtomicFileSet set;
  set.add(dir.file("a.npy")).write("a");
  set.add(dir.file("b.npy")).write("b");
  EXPECT_TRUE(listing(dir.path).count("a.npy") == 0);
  set.commit();
  EXPECT_EQ(read_all(dir.file("a.npy")), "a");
  EXPECT_EQ(read_all(dir.file("b.npy")), "b");
  EXPECT_EQ(listing(dir.path).size(), 2u);
}
