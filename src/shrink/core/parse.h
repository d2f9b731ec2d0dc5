// Numbers from untrusted text (file headers, metadata, flag lists): the whole text
// must be the number, it must fit, and reals must be finite. Errors name `what`
// (a file and field, or a flag) and quote at most 40 characters of the text.
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace shrink {

int64_t parse_int(std::string_view text, const std::string& what,
                  int64_t lo = std::numeric_limits<int64_t>::min(),
                  int64_t hi = std::numeric_limits<int64_t>::max());
double parse_real(std::string_view text, const std::string& what,
                  double lo = -std::numeric_limits<double>::max(),
                  double hi = std::numeric_limits<double>::max());
// "a,b,c" (no empty items).
std::vector<double> parse_real_list(std::string_view text, const std::string& what,
                                    double lo = -std::numeric_limits<double>::max(),
                                    double hi = std::numeric_limits<double>::max());
std::vector<int64_t> parse_int_list(std::string_view text, const std::string& what,
                                    int64_t lo = std::numeric_limits<int64_t>::min(),
                                    int64_t hi = std::numeric_limits<int64_t>::max());

// Up to 40 printable characters of `text`, quoted, for an error message.
std::string quoted_excerpt(std::string_view text);

}  // namespace shrink
