// The version shrink was built as (CMake's PROJECT_VERSION, the one place it is
// set) and the git commit it was built from ("unknown" outside a checkout; with a
// "-dirty" suffix when tracked files differed). Defined in a file generated at
// build time by cmake/version_info.cmake.
#pragma once

namespace shrink {
const char* version();
const char* git_commit();
}  // namespace shrink
