// Typed node attributes, as ONNX defines them (graph-valued ones excepted).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace shrink::ir {

using Attribute = std::variant<int64_t, float, std::string, at::Tensor, std::vector<int64_t>,
                               std::vector<float>, std::vector<std::string>>;

class Attributes {
 public:
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  void set(const std::string& name, Attribute value) { values_[name] = std::move(value); }
  void erase(const std::string& name) { values_.erase(name); }
  const std::map<std::string, Attribute>& all() const { return values_; }

  // Typed getters; a wrongly typed attribute is an error naming it.
  int64_t get_int(const std::string& name, int64_t fallback) const;
  int64_t get_int(const std::string& name) const;
  float get_float(const std::string& name, float fallback) const;
  std::string get_string(const std::string& name, const std::string& fallback) const;
  std::vector<int64_t> get_ints(const std::string& name, std::vector<int64_t> fallback = {}) const;
  std::vector<float> get_floats(const std::string& name, std::vector<float> fallback = {}) const;
  at::Tensor get_tensor(const std::string& name) const;

 private:
  const Attribute& lookup(const std::string& name) const;
  std::map<std::string, Attribute> values_;
};

}  // namespace shrink::ir
