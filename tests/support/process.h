// Runs a shell command and captures its combined output and exit status.
#pragma once
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace shrink::test_support {

struct ProcessResult {
  int status;
  std::string output;
};

inline ProcessResult run_command(const std::string& command) {
  ProcessResult r{-1, ""};
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) r.output.append(buffer.data(), n);
  int status = pclose(pipe);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace shrink::test_support
