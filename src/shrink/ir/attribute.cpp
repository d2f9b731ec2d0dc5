#include "shrink/ir/attribute.h"

#include "shrink/core/error.h"

namespace shrink::ir {

const Attribute& Attributes::lookup(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) fail("attribute '", name, "' is required but missing");
  return it->second;
}

template <typename T>
static const T& as(const Attribute& a, const std::string& name, const char* expected) {
  if (auto* v = std::get_if<T>(&a)) return *v;
  fail("attribute '", name, "' should be ", expected);
}

int64_t Attributes::get_int(const std::string& name) const {
  return as<int64_t>(lookup(name), name, "an int");
}
int64_t Attributes::get_int(const std::string& name, int64_t fallback) const {
  return has(name) ? get_int(name) : fallback;
}
float Attributes::get_float(const std::string& name, float fallback) const {
  if (!has(name)) return fallback;
  const Attribute& a = lookup(name);
  if (auto* i = std::get_if<int64_t>(&a)) return static_cast<float>(*i);
  return as<float>(a, name, "a float");
}
std::string Attributes::get_string(const std::string& name, const std::string& fallback) const {
  return has(name) ? as<std::string>(lookup(name), name, "a string") : fallback;
}
std::vector<int64_t> Attributes::get_ints(const std::string& name,
                                          std::vector<int64_t> fallback) const {
  return has(name) ? as<std::vector<int64_t>>(lookup(name), name, "a list of ints") : fallback;
}
std::vector<float> Attributes::get_floats(const std::string& name,
                                          std::vector<float> fallback) const {
  return has(name) ? as<std::vector<float>>(lookup(name), name, "a list of floats") : fallback;
}
at::Tensor Attributes::get_tensor(const std::string& name) const {
  return as<at::Tensor>(lookup(name), name, "a tensor");
}

}  // namespace shrink::ir
