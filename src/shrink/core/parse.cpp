#include "shrink/core/parse.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "shrink/core/error.h"

namespace shrink {
namespace {

std::string number_text(double v) { return msg(v); }  // shortest of %g: 1.79769e+308, not 309 digits

template <typename T, typename Parse>
std::vector<T> parse_list(std::string_view text, Parse parse) {
  std::vector<T> out;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string_view item = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    out.push_back(parse(item));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

std::string quoted_excerpt(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 40)) out += (c >= 32 && c < 127) ? c : '?';
  return "'" + out + (text.size() > 40 ? "...'" : "'");
}

int64_t parse_int(std::string_view text, const std::string& what, int64_t lo, int64_t hi) {
  std::string s(text);
  char* end = nullptr;
  errno = 0;
  long long v = s.empty() ? 0 : std::strtoll(s.c_str(), &end, 10);
  SHRINK_CHECK(!s.empty() && end == s.c_str() + s.size() && !std::isspace(static_cast<unsigned char>(s[0])), what,
               ": expected an integer, got ", quoted_excerpt(text));
  SHRINK_CHECK(errno != ERANGE && v >= lo && v <= hi, what, ": expected an integer from ", lo, " to ", hi, ", got ",
               quoted_excerpt(text));
  return v;
}

double parse_real(std::string_view text, const std::string& what, double lo, double hi) {
  std::string s(text);
  char* end = nullptr;
  double v = s.empty() ? 0 : std::strtod(s.c_str(), &end);
  SHRINK_CHECK(!s.empty() && end == s.c_str() + s.size() && !std::isspace(static_cast<unsigned char>(s[0])), what,
               ": expected a number, got ", quoted_excerpt(text));
  SHRINK_CHECK(std::isfinite(v), what, ": expected a finite number, got ", quoted_excerpt(text));
  SHRINK_CHECK(v >= lo && v <= hi, what, ": expected a number from ", number_text(lo), " to ", number_text(hi),
               ", got ", quoted_excerpt(text));
  return v;
}

std::vector<double> parse_real_list(std::string_view text, const std::string& what, double lo, double hi) {
  return parse_list<double>(text, [&](std::string_view item) { return parse_real(item, what, lo, hi); });
}

std::vector<int64_t> parse_int_list(std::string_view text, const std::string& what, int64_t lo, int64_t hi) {
  return parse_list<int64_t>(text, [&](std::string_view item) { return parse_int(item, what, lo, hi); });
}

}  // namespace shrink
