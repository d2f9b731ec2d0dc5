// .npy read/write, checked against NumPy itself.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "shrink/core/error.h"
#include "shrink/io/npy.h"
#include "support/onnx_builder.h"
#include "support/paths.h"

using namespace shrink;

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
