# The library's dependencies, found the same way by the build and by the installed
# shrinkConfig.cmake (which includes this file with find_dependency in place of
# find_package). Sets SHRINK_DEPENDENCY_TARGETS, what the shrink target links.
#
# Every package found here must be installed by scripts/setup.sh (or be a Depends
# of one it installs): tests/install/check_build_inputs.py fails otherwise.
# shrink_find: find_package(... REQUIRED) in the build; find_dependency in the
# installed config (required only if the consumer's find_package(shrink) is).
if(NOT COMMAND shrink_find)
  macro(shrink_find)
    find_package(${ARGV} REQUIRED)
  endmacro()
endif()

shrink_find(Torch)          # libtorch-dev
shrink_find(Protobuf)       # libprotobuf-dev (before ONNX: onnx_proto links protobuf::libprotobuf)
shrink_find(ONNX)           # libonnx-dev
shrink_find(nlohmann_json)  # nlohmann-json3-dev
shrink_find(ZLIB)           # zlib1g-dev
shrink_find(JPEG)           # libjpeg62-turbo-dev (CMake's FindJPEG)
shrink_find(PNG)            # libpng-dev (CMake's FindPNG)
shrink_find(libzip)         # libzip-dev (.npz archives)
shrink_find(yaml-cpp)       # libyaml-cpp-dev (compress recipes); its target is plain yaml-cpp
shrink_find(Threads)
shrink_find(OpenMP)
shrink_find(DNNL MODULE)    # libdnnl-dev, by cmake/FindDNNL.cmake (why: see there)

set(SHRINK_DEPENDENCY_TARGETS
  ${TORCH_LIBRARIES} onnx_proto protobuf::libprotobuf nlohmann_json::nlohmann_json
  ZLIB::ZLIB JPEG::JPEG PNG::PNG libzip::zip yaml-cpp Threads::Threads OpenMP::OpenMP_CXX DNNL::dnnl)
