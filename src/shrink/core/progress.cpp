#include "shrink/core/progress.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <sstream>

namespace shrink {

std::string format_duration(double seconds) {
  int64_t s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", long(s / 3600), long(s / 60 % 60), long(s % 60));
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", long(s / 60), long(s % 60));
  return buf;
}

ProgressBar::ProgressBar(std::string label, int64_t total, std::string unit, bool enabled)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), enabled_(enabled),
      tty_(isatty(STDERR_FILENO) != 0), start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

double ProgressBar::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void ProgressBar::update(int64_t done, int64_t items, const std::string& text) {
  if (!enabled_ || !tty_) return;
  auto now = std::chrono::steady_clock::now();
  if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  double elapsed = elapsed_seconds();
  double rate = elapsed > 0 ? items / elapsed : 0;
  double eta = done > 0 ? elapsed * (total_ - done) / done : 0;
  const int width = 24;
  int filled = total_ ? static_cast<int>(width * done / total_) : width;
  std::ostringstream line;
  line << "\r" << label_ << " [" << std::string(filled, '#') << std::string(width - filled, '.') << "] " << done
       << "/" << total_ << " " << text << " " << static_cast<int64_t>(rate) << " " << unit_ << "/s ETA "
       << format_duration(eta) << "   ";
  std::cerr << line.str() << std::flush;
}

void ProgressBar::finish(const std::string& text) {
  if (!enabled_) return;
  std::cerr << (tty_ ? "\r" : "") << label_ << " " << text << " (" << format_duration(elapsed_seconds())
            << ")" << std::string(tty_ ? 30 : 0, ' ') << "\n"
            << std::flush;
}

}  // namespace shrink
