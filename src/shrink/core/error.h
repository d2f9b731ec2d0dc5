// One exception type for everything shrink reports to a user. Messages name the
// file, node, value or flag involved and say what was expected.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace shrink {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
inline void append(std::ostringstream&) {}
template <typename T, typename... Rest>
void append(std::ostringstream& out, const T& first, const Rest&... rest) {
  out << first;
  append(out, rest...);
}
}  // namespace detail

// Concatenates its arguments with operator<<.
template <typename... Args>
std::string msg(const Args&... args) {
  std::ostringstream out;
  detail::append(out, args...);
  return out.str();
}

template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(msg(args...));
}

}  // namespace shrink

#define SHRINK_CHECK(cond, ...)          \
  do {                                   \
    if (!(cond)) ::shrink::fail(__VA_ARGS__); \
  } while (0)
