#include "shrink/cli/validators.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "shrink/core/error.h"
#include "shrink/core/parse.h"

namespace shrink::cli {
namespace {

// The value as a finite double, or an error message.
std::string as_finite(const std::string& text, double& v) {
  char* end = nullptr;
  v = text.empty() ? 0 : std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size()) return "expected a number, got " + quoted_excerpt(text);
  if (!std::isfinite(v)) return "expected a finite number, got " + quoted_excerpt(text);
  return "";
}


CLI::Validator bounded(double lo, double hi, bool lo_open, std::string expected, std::string name) {
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        double v = 0;
        std::string err = as_finite(text, v);
        if (!err.empty()) return err;
        if (v < lo || v > hi || (lo_open && v == lo)) return "expected " + expected + ", got " + quoted_excerpt(text);
        return "";
      },
      "", name);
}

}  // namespace

CLI::Validator range(double lo, double hi) {
  return bounded(lo, hi, false, "a number from " + msg(lo) + " to " + msg(hi), "range");
}
CLI::Validator positive() { return bounded(0, HUGE_VAL, true, "a number > 0", "positive"); }
CLI::Validator non_negative() { return bounded(0, HUGE_VAL, false, "a number >= 0", "non_negative"); }
CLI::Validator finite() { return bounded(-HUGE_VAL, HUGE_VAL, false, "a finite number", "finite"); }

CLI::Validator count(int64_t lo, int64_t hi) {
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        char* end = nullptr;
        errno = 0;
        long long v = text.empty() ? 0 : std::strtoll(text.c_str(), &end, 10);
        if (text.empty() || end != text.c_str() + text.size() || errno == ERANGE || v < lo || v > hi)
          return "expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi) + ", got " +
                 quoted_excerpt(text);
        return "";
      },
      "", "count");
}

void require_finite_floats(CLI::App& app) {
  for (CLI::Option* opt : app.get_options())
    if (opt->get_type_name().rfind("FLOAT", 0) == 0) opt->check(finite());
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) require_finite_floats(*sub);
}

std::string one_line_failure(const CLI::App* app, const CLI::Error& e) {
  std::string what = e.what();
  for (char& c : what)
    if (c == '\n') c = ' ';
  if (what.size() > 160) what = what.substr(0, 157) + "...";
  std::string command = "shrink";
  // The subcommand that failed, for the --help hint.
  for (const CLI::App* sub : app->get_subcommands()) command += " " + sub->get_name();
  return "shrink: error: " + what + " (see " + command + " --help)\n";
}

std::map<std::string, int64_t> parse_dim_sizes(const std::vector<std::string>& items, const std::string& flag) {
  std::map<std::string, int64_t> sizes;
  for (const std::string& item : items) {
    size_t eq = item.rfind('=');
    SHRINK_CHECK(eq != std::string::npos && eq > 0, flag, ": expected NAME=SIZE, got ", quoted_excerpt(item));
    std::string name = item.substr(0, eq);
    int64_t size = parse_int(item.substr(eq + 1), flag + " " + name, 1, int64_t{1} << 31);
    SHRINK_CHECK(sizes.emplace(name, size).second, flag, ": '", name, "' is given twice");
  }
  return sizes;
}

}  // namespace shrink::cli
