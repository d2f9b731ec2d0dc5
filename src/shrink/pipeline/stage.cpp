#include "shrink/pipeline/stage.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "shrink/core/error.h"
#include "shrink/core/parse.h"

namespace shrink::pipeline {
namespace {

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace

Fields::Fields(const nlohmann::json& j, std::string where, Locate locate)
    : j_(j), where_(std::move(where)), locate_(std::move(locate)) {
  SHRINK_CHECK(j_.is_object() || j_.is_null(), where_, ": expected a mapping of settings (KEY: VALUE), got ", j_.dump());
}

void Fields::bad(const std::string& key, const std::string& what) const {
  std::string place = locate_ ? locate_(key) : "";
  fail(place.empty() ? where_ : place + ": " + where_, ": '", key, "': ", what);
}

void Fields::check(bool ok, const char* key, const std::string& expected) const {
  if (!ok) bad(key, expected);
}

const nlohmann::json& Fields::at(const char* key) {
  read_.push_back(key);
  return j_.at(key);
}

void Fields::read(const char* key, std::string& out) {
  if (!has(key)) return;
  const nlohmann::json& v = at(key);
  if (v.is_string()) out = v.get<std::string>();
  else if (v.is_number()) out = v.dump();
  else bad(key, "expected text, got " + v.dump());
}

void Fields::read(const char* key, double& out) {
  if (!has(key)) return;
  const nlohmann::json& v = at(key);
  if (v.is_number()) out = v.get<double>();
  else if (v.is_string()) {
    try {
      out = parse_real(v.get<std::string>(), key);
    } catch (const Error&) {
      bad(key, "expected a number, got " + v.dump());
    }
  } else {
    bad(key, "expected a number, got " + v.dump());
  }
  if (!std::isfinite(out)) bad(key, "expected a finite number");
}

void Fields::read(const char* key, int64_t& out) {
  if (!has(key)) return;
  double d = static_cast<double>(out);
  read(key, d);
  if (d != std::floor(d) || std::fabs(d) > 9e15) bad(key, "expected a whole number, got " + j_.at(key).dump());
  out = static_cast<int64_t>(d);
}

void Fields::read(const char* key, int& out) {
  int64_t v = out;
  read(key, v);
  if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) bad(key, "out of range");
  out = static_cast<int>(v);
}

void Fields::read(const char* key, uint64_t& out) {
  int64_t v = static_cast<int64_t>(out);
  read(key, v);
  if (v < 0) bad(key, "expected a non-negative whole number");
  out = static_cast<uint64_t>(v);
}

void Fields::read(const char* key, bool& out) {
  if (!has(key)) return;
  const nlohmann::json& v = at(key);
  if (v.is_boolean()) out = v.get<bool>();
  else if (v == "true" || v == "yes") out = true;
  else if (v == "false" || v == "no") out = false;
  else bad(key, "expected true or false, got " + v.dump());
}

void Fields::read(const char* key, std::vector<std::string>& out) {
  if (!has(key)) return;
  const nlohmann::json& v = at(key);
  out.clear();
  if (v.is_string()) {
    out = split_commas(v.get<std::string>());
    return;
  }
  if (!v.is_array()) bad(key, "expected a list of names, got " + v.dump());
  for (const auto& item : v) {
    if (!item.is_string()) bad(key, "expected a list of names, got " + item.dump() + " in it");
    out.push_back(item.get<std::string>());
  }
}

namespace {

template <class T>
void read_pairs(const nlohmann::json& v, std::map<std::string, T>& out, const std::function<T(const std::string&, const nlohmann::json&)>& value,
                const std::function<void(const std::string&)>& bad) {
  out.clear();
  if (v.is_object()) {
    for (const auto& [name, x] : v.items()) out[name] = value(name, x);
    return;
  }
  if (!v.is_string()) bad("expected NAME: VALUE pairs or \"NAME=VALUE,...\", got " + v.dump());
  for (const std::string& item : split_commas(v.get<std::string>())) {
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) bad("'" + item + "' is not NAME=VALUE");
    out[item.substr(0, eq)] = value(item.substr(0, eq), nlohmann::json(item.substr(eq + 1)));
  }
}

}  // namespace

void Fields::read(const char* key, std::map<std::string, double>& out) {
  if (!has(key)) return;
  const std::string k = key;
  auto fail_here = [&](const std::string& what) { bad(k, what); };
  read_pairs<double>(at(key), out, [&](const std::string& name, const nlohmann::json& x) -> double {
    if (x.is_number()) return x.get<double>();
    if (x.is_string()) return parse_real(x.get<std::string>(), k + " " + name);
    fail_here(name + ": expected a number, got " + x.dump());
    return 0;
  }, fail_here);
}

void Fields::read(const char* key, std::map<std::string, int>& out) {
  if (!has(key)) return;
  const std::string k = key;
  auto fail_here = [&](const std::string& what) { bad(k, what); };
  read_pairs<int>(at(key), out, [&](const std::string& name, const nlohmann::json& x) -> int {
    double d = x.is_number() ? x.get<double>() : x.is_string() ? parse_real(x.get<std::string>(), k + " " + name) : NAN;
    if (!(d == std::floor(d)) || std::fabs(d) > 1e9) fail_here(name + ": expected a whole number, got " + x.dump());
    return static_cast<int>(d);
  }, fail_here);
}

void Fields::finish() const {
  if (!j_.is_object()) return;
  for (const auto& [key, v] : j_.items())
    if (std::find(read_.begin(), read_.end(), key) == read_.end()) bad(key, "no such setting");
}

std::string setting_name(const std::string& key, bool cli) {
  if (!cli) return key;
  std::string flag = "--" + key;
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

}  // namespace shrink::pipeline
