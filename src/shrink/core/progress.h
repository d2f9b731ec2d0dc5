// A progress bar on stderr with rate and ETA, redrawn in place on a terminal; off a
// terminal (CI logs) only the closing line of each bar is printed.
#pragma once
#include <chrono>
#include <string>

namespace shrink {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, std::string unit, bool enabled = true);
  // `done` steps of `total`, `items` processed so far (for the rate), extra text.
  void update(int64_t done, int64_t items, const std::string& text);
  void finish(const std::string& text);
  double elapsed_seconds() const;

 private:
  std::string label_, unit_;
  int64_t total_;
  bool enabled_, tty_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

std::string format_duration(double seconds);  // "1:02:03" or "2:03"

}  // namespace shrink
