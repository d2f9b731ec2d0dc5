# Finds oneDNN (Debian's libdnnl-dev) without its CMake config.
#
# Debian builds oneDNN with the OpenCL GPU runtime, so dnnl-config.cmake runs
# find_package(OpenCL REQUIRED) and puts OpenCL::OpenCL on DNNL::dnnl's link
# interface. shrink uses only the CPU engine, and libdnnl.so already records
# libOpenCL.so.1 as a runtime dependency (ocl-icd-libopencl1, which libdnnl2
# depends on), so requiring the OpenCL development headers and library of a GPU
# runtime we never call would only make a fresh machine fail to configure.
#
# Defines the imported target DNNL::dnnl (unless a project defined it already)
# and DNNL_FOUND, DNNL_INCLUDE_DIR, DNNL_LIBRARY, DNNL_VERSION.
find_path(DNNL_INCLUDE_DIR NAMES oneapi/dnnl/dnnl.h)
find_library(DNNL_LIBRARY NAMES dnnl)

if(DNNL_INCLUDE_DIR AND EXISTS "${DNNL_INCLUDE_DIR}/oneapi/dnnl/dnnl_version.h")
  file(STRINGS "${DNNL_INCLUDE_DIR}/oneapi/dnnl/dnnl_version.h" _dnnl_version_lines
       REGEX "#define DNNL_VERSION_(MAJOR|MINOR|PATCH) ")
  foreach(_part MAJOR MINOR PATCH)
    string(REGEX REPLACE ".*#define DNNL_VERSION_${_part} ([0-9]+).*" "\\1"
           _dnnl_${_part} "${_dnnl_version_lines}")
  endforeach()
  set(DNNL_VERSION "${_dnnl_MAJOR}.${_dnnl_MINOR}.${_dnnl_PATCH}")
  unset(_dnnl_version_lines)
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(DNNL
  REQUIRED_VARS DNNL_LIBRARY DNNL_INCLUDE_DIR
  VERSION_VAR DNNL_VERSION)

if(DNNL_FOUND AND NOT TARGET DNNL::dnnl)
  add_library(DNNL::dnnl UNKNOWN IMPORTED)
  set_target_properties(DNNL::dnnl PROPERTIES
    IMPORTED_LOCATION "${DNNL_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${DNNL_INCLUDE_DIR}")
endif()
mark_as_advanced(DNNL_INCLUDE_DIR DNNL_LIBRARY)
