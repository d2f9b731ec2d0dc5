# Installation, the exported CMake package and the Debian packages.
#
#   cmake --install build --prefix P   P/bin/shrink, P/lib/libshrink.a, P/include/shrink/...,
#                                      P/lib/cmake/shrink/shrinkConfig.cmake (+ version, targets)
#   cpack -G DEB (in the build dir)    shrink_<version>_amd64.deb      the command line
#                                      shrink-dev_<version>_amd64.deb  library, headers, CMake package
include(CMakePackageConfigHelpers)

set(SHRINK_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/shrink")

install(TARGETS shrink_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
install(TARGETS shrink EXPORT shrinkTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# Public headers: the library's, not the command line's nor the precompiled header.
install(DIRECTORY src/shrink DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev
        FILES_MATCHING PATTERN "*.h"
        PATTERN "cli" EXCLUDE
        PATTERN "pch.h" EXCLUDE)

install(EXPORT shrinkTargets NAMESPACE shrink:: DESTINATION ${SHRINK_CMAKE_DIR} COMPONENT dev)
configure_package_config_file(cmake/shrinkConfig.cmake.in
  "${PROJECT_BINARY_DIR}/shrinkConfig.cmake" INSTALL_DESTINATION ${SHRINK_CMAKE_DIR})
write_basic_package_version_file("${PROJECT_BINARY_DIR}/shrinkConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/shrinkConfig.cmake" "${PROJECT_BINARY_DIR}/shrinkConfigVersion.cmake"
              cmake/shrinkDependencies.cmake cmake/FindDNNL.cmake
        DESTINATION ${SHRINK_CMAKE_DIR} COMPONENT dev)

# Debian packages. The command line's Depends are computed by dpkg-shlibdeps from
# the binary's shared libraries (LibTorch, protobuf, oneDNN, zlib, ...), so
# `apt-get install ./shrink_*.deb` brings exactly what it loads. The -dev package
# depends on the -dev packages its CMake package finds (cmake/shrinkDependencies.cmake).
set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "shrink")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_CONTACT "shrink developers <shrink@localhost>")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION "science")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME "shrink")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SHLIBDEPS ON)
# The embedded default data and the fast BLAS LibTorch's float kernels want.
set(CPACK_DEBIAN_RUNTIME_PACKAGE_RECOMMENDS "dataset-fashion-mnist, libopenblas0-openmp")
set(CPACK_DEBIAN_DEV_PACKAGE_NAME "shrink-dev")
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION "libdevel")
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
    "libtorch-dev, libonnx-dev, libprotobuf-dev, nlohmann-json3-dev, zlib1g-dev, libjpeg62-turbo-dev, libpng-dev, libzip-dev, zipcmp, zipmerge, ziptool, libyaml-cpp-dev, libdnnl-dev, libgomp1")
set(CPACK_DEBIAN_DEV_PACKAGE_RECOMMENDS "cmake, g++")
include(CPack)
