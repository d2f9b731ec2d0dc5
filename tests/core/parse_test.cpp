// Numbers from untrusted text: whole-text, in range, finite; errors name the field.
#include <gtest/gtest.h>

#include "shrink/core/error.h"
#include "shrink/core/parse.h"

using namespace shrink;

namespace {
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Parse, IntegersWholeTextInRange) {
  EXPECT_EQ(parse_int("42", "x"), 42);
  EXPECT_EQ(parse_int("-7", "x"), -7);
  EXPECT_EQ(error_of([] { parse_int("12abc", "f.onnx: field"); }), "f.onnx: field: expected an integer, got '12abc'");
  EXPECT_EQ(error_of([] { parse_int("", "f"); }), "f: expected an integer, got ''");
  EXPECT_EQ(error_of([] { parse_int(" 1", "f"); }), "f: expected an integer, got ' 1'");
  // Overflow names the field (std::stoll said only "stoll").
  EXPECT_EQ(error_of([] { parse_int("99999999999999999999", "f.npy: shape", 0, 100); }),
            "f.npy: shape: expected an integer from 0 to 100, got '99999999999999999999'");
  EXPECT_EQ(error_of([] { parse_int("101", "f", 0, 100); }), "f: expected an integer from 0 to 100, got '101'");
}

TEST(Parse, RealsAreFinite) {
  EXPECT_DOUBLE_EQ(parse_real("0.25", "x"), 0.25);
  EXPECT_DOUBLE_EQ(parse_real("-1e-3", "x"), -1e-3);
  for (const char* bad : {"nan", "NaN", "inf", "-inf", "infinity", "1e999"})
    EXPECT_NE(error_of([&] { parse_real(bad, "--max-drop"); }).find("--max-drop: expected a finite number"),
              std::string::npos)
        << bad;
  EXPECT_EQ(error_of([] { parse_real("abc", "m.onnx: metadata 'shrink.input_mean'"); }),
            "m.onnx: metadata 'shrink.input_mean': expected a number, got 'abc'");
  EXPECT_EQ(error_of([] { parse_real("2", "f", 0, 1); }), "f: expected a number from 0 to 1, got '2'");
}

TEST(Parse, ListsAndLongTextStayShort) {
  EXPECT_EQ(parse_real_list("0.5,1,2", "x"), (std::vector<double>{0.5, 1, 2}));
  EXPECT_EQ(parse_int_list("3,1", "x"), (std::vector<int64_t>{3, 1}));
  EXPECT_THROW(parse_real_list("1,,2", "x"), Error);
  std::string e = error_of([] { parse_real(std::string(100000, '9') + "x", "f"); });
  EXPECT_LT(e.size(), 100u) << e;
  EXPECT_EQ(quoted_excerpt(std::string("a\nb\0c", 5)), "'a?b?c'");
}
