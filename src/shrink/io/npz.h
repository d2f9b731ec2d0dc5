// NumPy .npz archives (numpy.savez and savez_compressed: a zip file of .npy
// members), read with libzip. Members are checked as .npy files are (io/npy.h);
// a member may expand to at most kMaxNpzMemberBytes.
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <string>

namespace shrink::io {

constexpr uint64_t kMaxNpzMemberBytes = uint64_t{16} << 30;

// Every member, by its name without ".npy" (numpy's keys).
std::map<std::string, at::Tensor> read_npz(const std::string& path);
// The same from the bytes of such a file (`label` names them in errors).
std::map<std::string, at::Tensor> read_npz_bytes(const std::string& bytes, const std::string& label);

}  // namespace shrink::io
