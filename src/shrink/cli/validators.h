// Flag validators with short messages. Every number a flag takes must be finite
// (NaN and infinities are refused: `--max-drop nan` used to switch the fallback
// off silently) and in its documented range; the message says the range in a few
// characters (CLI11's own printed the largest double in full, 309 digits).
#pragma once
#include <CLI/CLI.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace shrink::cli {

CLI::Validator range(double lo, double hi);        // lo <= x <= hi
CLI::Validator positive();                          // 0 < x, finite
CLI::Validator non_negative();                      // 0 <= x, finite
CLI::Validator finite();                            // any finite number
CLI::Validator count(int64_t lo, int64_t hi);       // an integer lo..hi

// Adds finite() to every floating-point option of `app` and its subcommands, so no
// float flag accepts NaN or an infinity, checked or not. Call after all options exist.
void require_finite_floats(CLI::App& app);

// NAME=SIZE items (`--dim sequence=128`) to a map; a missing '=', an empty name, a size
// that is not an integer 1..2^31 or a name given twice is an error naming `flag`.
std::map<std::string, int64_t> parse_dim_sizes(const std::vector<std::string>& items, const std::string& flag);

// One line, "shrink: error: --epochs: expected a number > 0, got '-1' (see shrink train --help)".
std::string one_line_failure(const CLI::App* app, const CLI::Error& e);

}  // namespace shrink::cli
