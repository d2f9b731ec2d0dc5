// The message of the shrink::Error a call throws ("" when it throws none).
#pragma once
#include <functional>
#include <string>

#include "shrink/core/error.h"

namespace shrink::test_support {

inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace shrink::test_support
