// .npy read/write, checked against NumPy itself.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "shrink/core/error.h"
#include "shrink/io/npy.h"
#include "support/npy_bytes.h"
#include "support/onnx_builder.h"
#include "support/paths.h"

using namespace shrink;
using test_support::npy_with_header;

TEST(Npy, RoundTripKeepsTypeShapeAndValues) {
  test_support::TempDir dir;
  for (at::ScalarType t : {at::kFloat, at::kDouble, at::kLong, at::kInt, at::kByte, at::kBool}) {
    at::Tensor x = (at::arange(24, at::kDouble).view({2, 3, 4}) - 5).to(t);
    io::write_npy(dir.file("x.npy"), x);
    at::Tensor y = io::read_npy(dir.file("x.npy"));
    EXPECT_EQ(y.scalar_type(), t);
    EXPECT_TRUE(at::equal(x, y));
  }
}

TEST(Npy, AgreesWithNumpy) {
  test_support::TempDir dir;
  std::string script = dir.file("np.py");
  std::ofstream(script) << "import numpy as np, sys\n"
                           "a = np.load(sys.argv[1])\n"
                           "assert a.dtype == np.float32 and a.shape == (3, 2), (a.dtype, a.shape)\n"
                           "assert (a == np.arange(6, dtype=np.float32).reshape(3, 2) * 0.5).all()\n"
                           "np.save(sys.argv[2], np.arange(5, dtype=np.int64) * -3)\n";
  io::write_npy(dir.file("ours.npy"), at::arange(6, at::kFloat).view({3, 2}) * 0.5);
  std::string cmd = test_support::python() + " " + script + " " + dir.file("ours.npy") + " " + dir.file("theirs.npy");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  at::Tensor theirs = io::read_npy(dir.file("theirs.npy"));
  EXPECT_TRUE(at::equal(theirs, at::arange(5, at::kLong) * -3));
}

TEST(Npy, BadFilesGiveOneLineErrors) {
  test_support::TempDir dir;
  std::ofstream(dir.file("junk.npy")) << "not numpy";
  EXPECT_THROW(io::read_npy(dir.file("junk.npy")), Error);
  io::write_npy(dir.file("ok.npy"), at::ones({100}));
  std::ifstream in(dir.file("ok.npy"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(dir.file("cut.npy"), std::ios::binary) << bytes.substr(0, bytes.size() - 10);
  try {
    io::read_npy(dir.file("cut.npy"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("truncated data"), std::string::npos) << e.what();
  }
  EXPECT_THROW(io::read_npy(dir.file("missing.npy")), Error);
}

namespace {
std::string error_reading(const std::string& bytes) {
  try {
    io::read_npy_bytes(bytes, "x.npy");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
long peak_rss_kb() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  return 0;
}
}  // namespace

// Each of these once crashed shrink, allocated gigabytes, or was accepted (issue 23).
TEST(Npy, LongHeadersAreRefusedWithoutRecursion) {
  // A 30 kB shape tuple and a 100 kB dtype string: the regex parser recursed until SIGSEGV.
  std::string shape = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  for (int i = 0; i < 10000; ++i) shape += "1, ";
  shape += "), }";
  EXPECT_EQ(error_reading(npy_with_header(shape, "", 2)),
            "x.npy: .npy header of " + std::to_string(shape.size()) + " bytes is larger than numpy writes (at most 10000)");
  std::string dtype = "{'descr': '" + std::string(100000, 'f') + "', 'fortran_order': False, 'shape': (1,), }";
  EXPECT_NE(error_reading(npy_with_header(dtype, "", 2)).find("larger than numpy writes"), std::string::npos);
  // Within the size limit, the same shapes fail by content, in one short line.
  std::string many = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  for (int i = 0; i < 1000; ++i) many += "1,";
  many += "), }";
  std::string e = error_reading(npy_with_header(many));
  EXPECT_EQ(e, "x.npy: .npy shape has more than 64 dimensions");
  e = error_reading(npy_with_header("{'descr': '" + std::string(9000, '<') + "', 'fortran_order': False, 'shape': (1,), }"));
  EXPECT_LT(e.size(), 200u) << e;
  EXPECT_NE(e.find("is not supported"), std::string::npos) << e;
}

TEST(Npy, DeclaredSizesAreCheckedAgainstTheFileBeforeAllocating) {
  test_support::TempDir dir;
  // 20 bytes whose header length field says 0xFFFFFFF0: once 4.25 GiB were allocated first.
  std::string tiny = std::string("\x93NUMPY\x02\x00", 8) + std::string("\xF0\xFF\xFF\xFF", 4) + "{'descr'";
  std::ofstream(dir.file("tiny.npy"), std::ios::binary) << tiny;
  const long before = peak_rss_kb();
  try {
    io::read_npy(dir.file("tiny.npy"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is larger than numpy writes"), std::string::npos) << e.what();
  }
  // A valid header declaring 2^40 floats in a 100-byte file.
  std::string huge = npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1048576, 1048576), }\n", "abcd");
  std::ofstream(dir.file("huge.npy"), std::ios::binary) << huge;
  try {
    io::read_npy(dir.file("huge.npy"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), dir.file("huge.npy") + ": truncated data (shape (1048576, 1048576) needs " +
                                         std::to_string(4ull << 40) + " bytes, the file has 4)");
  }
  EXPECT_LT(peak_rss_kb() - before, 64 * 1024);  // nothing near the declared sizes was allocated
  // Products that overflow 64 bits.
  EXPECT_NE(error_reading(npy_with_header(
                "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }")).find("too large"),
            std::string::npos);
  EXPECT_EQ(error_reading(npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }")),
            "x.npy: .npy header: a dimension overflows a 64-bit integer");
}

TEST(Npy, InvalidHeadersAreRefusedNotReinterpreted) {
  // The minus sign used to be dropped: (-1, 1, 28, 28) ran as (1, 1, 28, 28).
  EXPECT_EQ(error_reading(npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 1, 28, 28), }")),
            "x.npy: .npy header: shape must be a tuple of non-negative integers (byte 51)");
  for (const char* header : {"{'descr': '<f4', 'fortran_order': False}",                      // no shape
                             "{'descr': '<f4', 'shape': (1,)}",                               // no order
                             "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}",  // extra key
                             "{'descr': '<f4', 'fortran_order': False, 'shape': (1.5,)}",
                             "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,)}",
                             "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} trailing",
                             "{'descr': '<f4', 'descr': '<f8', 'fortran_order': False, 'shape': (1,)}",
                             "{'descr': '<f4, 'fortran_order': False, 'shape': (1,)}", "", "{"}) {
    std::string e = error_reading(npy_with_header(header, std::string(8, '\0')));
    EXPECT_EQ(e.rfind("x.npy: ", 0), 0u) << header << " -> " << e;
    EXPECT_EQ(e.find('\n'), std::string::npos);
  }
  EXPECT_EQ(error_reading(npy_with_header("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", "abcd")),
            "x.npy: Fortran-order arrays are not supported (save with C order)");
  EXPECT_EQ(error_reading(std::string("\x93NUMPY\x09\x00", 8) + "ab"), "x.npy: .npy format version 9 is not supported (expected 1 to 3)");
}

TEST(Npy, ReadsWhatNumpyWritesInEveryFormatVersion) {
  test_support::TempDir dir;
  std::string script = dir.file("np.py");
  std::ofstream(script) << "import numpy as np, sys\n"
                           "from numpy.lib import format as f\n"
                           "a = np.arange(12, dtype=np.float32).reshape(3, 4) - 2\n"
                           "for v in [(1, 0), (2, 0), (3, 0)]:\n"
                           "    with open(sys.argv[1] + '/v%d.npy' % v[0], 'wb') as out:\n"
                           "        f.write_array(out, a, version=v)\n"
                           "np.save(sys.argv[1] + '/scalar.npy', np.float64(2.5))\n"
                           "np.save(sys.argv[1] + '/empty.npy', np.zeros((0, 3), np.int32))\n";
  std::string cmd = test_support::python() + " " + script + " " + dir.path;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  at::Tensor expected = at::arange(12, at::kFloat).view({3, 4}) - 2;
  for (const char* v : {"v1", "v2", "v3"}) EXPECT_TRUE(at::equal(io::read_npy(dir.file(std::string(v) + ".npy")), expected)) << v;
  at::Tensor scalar = io::read_npy(dir.file("scalar.npy"));
  EXPECT_EQ(scalar.dim(), 0);
  EXPECT_EQ(scalar.item<double>(), 2.5);
  at::Tensor empty = io::read_npy(dir.file("empty.npy"));
  EXPECT_EQ(empty.sizes(), (std::vector<int64_t>{0, 3}));
  EXPECT_EQ(empty.scalar_type(), at::kInt);
}
