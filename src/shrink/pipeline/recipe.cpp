#include "shrink/pipeline/recipe.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>

#include "shrink/core/atomic_file.h"
#include "shrink/core/error.h"

namespace shrink::pipeline {
namespace {

// Settings whose value is itself a list: alternatives of them are lists of lists.
bool list_valued(const std::string& key) {
  return key == "layers" || key == "ignore" || key == "exclude" || key == "exclude_ops";
}

bool is_range(const nlohmann::json& v) {
  if (!v.is_object() || !v.contains("from") || !v.contains("to")) return false;
  for (const auto& [k, x] : v.items())
    if (k != "from" && k != "to" && k != "step") return false;
  return true;
}

// A YAML scalar as JSON: quoted text stays text; else true/false, a whole number, a
// real, null, or text.
nlohmann::json scalar(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") return s;
  if (s == "true" || s == "True" || s == "yes") return true;
  if (s == "false" || s == "False" || s == "no") return false;
  if (s.empty() || s == "~" || s == "null") return nullptr;
  char* end = nullptr;
  long long i = std::strtoll(s.c_str(), &end, 10);
  if (end && *end == '\0') return i;
  double d = std::strtod(s.c_str(), &end);
  if (end && *end == '\0' && std::isfinite(d)) return d;
  return s;
}

// YAML -> JSON, recording each mapping key's line (1-based) by its path "a/b".
nlohmann::json to_json(const YAML::Node& n, const std::string& path, std::map<std::string, int>& lines) {
  switch (n.Type()) {
    case YAML::NodeType::Null: return nullptr;
    case YAML::NodeType::Scalar: return scalar(n);
    case YAML::NodeType::Sequence: {
      nlohmann::json a = nlohmann::json::array();
      for (size_t i = 0; i < n.size(); ++i) a.push_back(to_json(n[i], path + "/" + std::to_string(i), lines));
      return a;
    }
    case YAML::NodeType::Map: {
      nlohmann::json o = nlohmann::json::object();
      for (const auto& kv : n) {
        const std::string key = kv.first.Scalar();
        const std::string p = path.empty() ? key : path + "/" + key;
        lines[p] = kv.first.Mark().line + 1;
        o[key] = to_json(kv.second, p, lines);
      }
      return o;
    }
    default: return nullptr;
  }
}

struct Reader {
  const nlohmann::json& j;
  std::string file;
  const std::map<std::string, int>& lines;
  std::string at(const std::string& path) const {
    auto it = lines.find(path);
    return it == lines.end() ? file : file + ":" + std::to_string(it->second);
  }
  [[noreturn]] void bad(const std::string& key, const std::string& what) const { fail(at(key), ": '", key, "': ", what); }
  double number(const char* key, double fallback) const {
    if (!j.contains(key)) return fallback;
    if (!j[key].is_number()) bad(key, "expected a number, got " + j[key].dump());
    return j[key].get<double>();
  }
  std::string text(const char* key, const std::string& fallback) const {
    if (!j.contains(key)) return fallback;
    if (!j[key].is_string()) bad(key, "expected text, got " + j[key].dump());
    return j[key].get<std::string>();
  }
};

}  // namespace

Fields::Locate StageSpec::locate() const {
  if (lines.empty()) return {};
  std::map<std::string, int> l = lines;
  std::string f = file;
  return [l, f](const std::string& key) {
    auto it = l.find(key);
    return it == l.end() ? std::string() : f + ":" + std::to_string(it->second);
  };
}

std::vector<nlohmann::json> StageSpec::expand() const {
  std::vector<nlohmann::json> out = {nlohmann::json::object()};
  if (!settings.is_object()) return out;
  const Fields::Locate loc = locate();
  for (const auto& [key, v] : settings.items()) {
    auto bad = [&, &key = key](const std::string& what) {
      const std::string place = loc ? loc(key) : "";
      fail(place.empty() ? where : place + ": " + where, ": '", key, "': ", what);
    };
    std::vector<nlohmann::json> choices;
    if (is_range(v)) {
      if (!v["from"].is_number() || !v["to"].is_number() || (v.contains("step") && !v["step"].is_number()))
        bad("a range needs numbers: {from: A, to: B, step: S}");
      double from = v["from"], to = v["to"], step = v.value("step", 0.0);
      if (!(step > 0)) bad("a range needs a positive step");
      if ((to - from) / step > 1000) bad("the range has more than 1000 values");
      const bool whole = v["from"].is_number_integer() && v["to"].is_number_integer() && v["step"].is_number_integer();
      for (double x = from; x <= to + 1e-9 * std::max(1.0, std::fabs(to)); x += step)
        choices.push_back(whole ? nlohmann::json(static_cast<int64_t>(std::llround(x))) : nlohmann::json(x));
    } else if (v.is_array() && (!list_valued(key) || (!v.empty() && v[0].is_array()))) {
      for (const auto& x : v) choices.push_back(x);
      if (choices.empty()) bad("an empty list of alternatives");
    } else {
      choices.push_back(v);
    }
    std::vector<nlohmann::json> next;
    for (const auto& partial : out)
      for (const auto& c : choices) {
        nlohmann::json x = partial;
        x[key] = c;
        next.push_back(std::move(x));
      }
    out = std::move(next);
  }
  return out;
}

Recipe parse_recipe(const std::string& text, const std::string& name) {
  nlohmann::json j;
  std::map<std::string, int> lines;
  const size_t first = text.find_first_not_of(" \t\r\n");
  const bool json = first != std::string::npos && text[first] == '{';
  if (json) {
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
      fail(name, ": not valid JSON (", e.what(), ")");
    }
  } else {
    try {
      j = to_json(YAML::Load(text), "", lines);
    } catch (const YAML::Exception& e) {
      fail(name, ":", e.mark.line + 1, ": not valid YAML (", e.msg, ")");
    }
  }
  SHRINK_CHECK(j.is_object(), name, ": a recipe is a mapping (target, max_drop, stages, ...), got ", j.dump().substr(0, 60));
  Reader r{j, name, lines};
  Recipe out;
  out.source = name;
  static const std::vector<std::string> keys = {"target", "max_drop", "max_drop_relative", "target_bytes",
                                                "target_latency_ms", "latency_batch", "latency_in", "trials",
                                                "minutes", "validation_samples", "seed", "keep", "stages"};
  for (const auto& [key, v] : j.items())
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
      std::string known;
      for (const auto& k : keys) known += (known.empty() ? "" : ", ") + k;
      r.bad(key, "no such key (known: " + known + ")");
    }
  out.target = r.text("target", out.target);
  if (out.target != "size" && out.target != "latency" && out.target != "macs")
    r.bad("target", "expected size, latency or macs, got '" + out.target + "'");
  if (j.contains("max_drop") && j.contains("max_drop_relative"))
    r.bad("max_drop_relative", "give max_drop (points) or max_drop_relative (percent), not both");
  out.budget.max_drop = r.number("max_drop", out.budget.max_drop);
  if (j.contains("max_drop_relative")) {
    out.budget.max_drop = r.number("max_drop_relative", 1.0);
    out.budget.relative = true;
  }
  if (out.budget.max_drop < 0) r.bad(out.budget.relative ? "max_drop_relative" : "max_drop", "expected a drop >= 0");
  out.budget.target_bytes = static_cast<int64_t>(r.number("target_bytes", 0));
  if (out.budget.target_bytes < 0) r.bad("target_bytes", "expected bytes >= 0");
  out.budget.target_latency_ms = r.number("target_latency_ms", 0);
  if (out.budget.target_latency_ms < 0) r.bad("target_latency_ms", "expected milliseconds >= 0");
  out.budget.latency_batch = static_cast<int64_t>(r.number("latency_batch", 64));
  if (out.budget.latency_batch < 1) r.bad("latency_batch", "expected a positive batch size");
  out.budget.latency_in = r.text("latency_in", "shrink");
  if (out.budget.latency_in != "shrink" && out.budget.latency_in != "onnxruntime")
    r.bad("latency_in", "expected shrink or onnxruntime, got '" + out.budget.latency_in + "'");
  double trials = r.number("trials", 0), keep = r.number("keep", out.keep), samples = r.number("validation_samples", 10000);
  if (trials < 0 || trials != std::floor(trials)) r.bad("trials", "expected a whole number >= 0");
  if (keep < 1 || keep != std::floor(keep)) r.bad("keep", "expected a whole number >= 1");
  if (samples < 1 || samples != std::floor(samples)) r.bad("validation_samples", "expected a whole number >= 1");
  out.trials = static_cast<int>(trials);
  out.keep = static_cast<int>(keep);
  out.validation_samples = static_cast<int64_t>(samples);
  out.minutes = r.number("minutes", 0);
  if (out.minutes < 0) r.bad("minutes", "expected minutes >= 0");
  const double seed = r.number("seed", 0);
  if (seed < 0 || seed != std::floor(seed)) r.bad("seed", "expected a whole number >= 0");
  out.seed = static_cast<uint64_t>(seed);
  if (!j.contains("stages")) fail(name, ": 'stages': missing (a list such as - prune: {amount: 0.9})");
  const nlohmann::json& stages = j["stages"];
  if (!stages.is_array() || stages.empty()) r.bad("stages", "expected a non-empty list of stages");
  for (size_t i = 0; i < stages.size(); ++i) {
    const std::string path = "stages/" + std::to_string(i);
    const nlohmann::json& s = stages[i];
    if (!s.is_object() || s.size() != 1)
      fail(r.at("stages"), ": stage ", i + 1, ": expected one KIND: {SETTINGS} (e.g. - prune: {amount: 0.9}), got ",
           s.dump().substr(0, 60));
    StageSpec spec;
    spec.kind = s.begin().key();
    spec.settings = s.begin().value().is_null() ? nlohmann::json::object() : s.begin().value();
    if (spec.settings.is_object() && spec.settings.contains("optional")) {
      auto it = lines.find(path + "/" + spec.kind + "/optional");
      if (!spec.settings["optional"].is_boolean())
        fail(it == lines.end() ? name : name + ":" + std::to_string(it->second), ": stage ", i + 1,
             ": 'optional': expected true or false");
      spec.optional = spec.settings["optional"].get<bool>();
      spec.settings.erase("optional");
    }
    spec.file = name;
    spec.where = "stage " + std::to_string(i + 1) + " (" + spec.kind + ")";
    const std::string prefix = path + "/" + spec.kind + "/";
    for (const auto& [p, line] : lines)
      if (p.rfind(prefix, 0) == 0 && p.find('/', prefix.size()) == std::string::npos) spec.lines[p.substr(prefix.size())] = line;
    auto kinds = stage_kinds();
    if (std::find(kinds.begin(), kinds.end(), spec.kind) == kinds.end()) {
      std::string known;
      for (const auto& k : kinds) known += (known.empty() ? "" : ", ") + k;
      auto it = lines.find(path + "/" + spec.kind);
      fail(it == lines.end() ? name : name + ":" + std::to_string(it->second), ": stage ", i + 1, ": unknown stage '",
           spec.kind, "' (known: ", known, ")");
    }
    // Every alternative must make a valid stage: errors now, not an hour into the search.
    for (const nlohmann::json& alt : spec.expand()) make_stage(spec.kind, alt, spec.where, spec.locate());
    out.stages.push_back(std::move(spec));
  }
  return out;
}

Recipe read_recipe(const std::string& path) { return parse_recipe(read_file(path), path); }

Recipe default_recipe(const std::string& target, const std::string& zoo_model) {
  Recipe r;
  r.target = target;
  r.source = "default (" + target + ")";
  auto stage = [](const std::string& kind, nlohmann::json settings) {
    StageSpec s;
    s.kind = kind;
    s.settings = std::move(settings);
    s.where = "default recipe, " + kind;
    return s;
  };
  if (target == "size" && (zoo_model == "lenet5" || zoo_model == "mlp" || zoo_model == "lenet300" ||
                           zoo_model == "resnet20" || zoo_model == "mobilenetv2")) {
    StageSpec s = stage("distill", {{"student", zoo_model}, {"width", 0.5}, {"epochs", 10}});
    s.optional = true;
    r.stages.push_back(s);
  }
  if (target == "size") {
    // Han et al.'s order: prune (global magnitude, fine-tuned), then share weights
    // (k-means codebooks, centroids fine-tuned); export stores sparse codes.
    r.stages.push_back(stage("prune", {{"method", "global"},
                                       {"amount", {0.5, 0.75, 0.85, 0.9, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98}},
                                       {"finetune", 3}, {"lr", 0.01}}));
    r.stages.push_back(stage("codebook", {{"bits", {3, 4, 5}}, {"finetune", 2}, {"lr", {0.0001, 0.002}}}));
  } else if (target == "latency") {
    // Fewer channels (filter norms, fine-tuned), low-rank layers where they measure faster
    // (optional: the pruned models stay in play), then int8 where it runs faster.
    // Channel counts rounded to the multiple (1, 8 or 16) that times fastest here.
    r.stages.push_back(stage("prune", {{"method", "ln-structured"}, {"amount", {0.2, 0.35, 0.5, 0.6, 0.7, 0.8}},
                                       {"round_to", "auto"}, {"finetune", 5}, {"lr", 0.02}}));
    StageSpec f = stage("factorize", {{"method", "svd"}, {"energy", 0.9}, {"finetune", 2}, {"lr", 0.01}});
    f.optional = true;
    r.stages.push_back(f);
    r.stages.push_back(stage("quantize", {{"mode", "static"}}));
  } else {
    SHRINK_CHECK(target == "macs", "--target: expected size, latency or macs, got '", target, "'");
    r.stages.push_back(stage("prune", {{"method", "ln-structured"}, {"amount", {0.25, 0.5, 0.65, 0.75}},
                                       {"finetune", 3}, {"lr", 0.01}}));
    r.stages.push_back(stage("factorize", {{"method", "svd"}, {"energy", {0.9, 0.95}}, {"finetune", 2}}));
  }
  return r;
}

nlohmann::json recipe_json(const Recipe& r) {
  nlohmann::json j = {{"target", r.target}, {"validation_samples", r.validation_samples}, {"seed", r.seed},
                      {"keep", r.keep}, {"source", r.source}};
  j[r.budget.relative ? "max_drop_relative" : "max_drop"] = r.budget.max_drop;
  if (r.budget.target_bytes) j["target_bytes"] = r.budget.target_bytes;
  if (r.budget.target_latency_ms) j["target_latency_ms"] = r.budget.target_latency_ms;
  j.update({{"latency_batch", r.budget.latency_batch}, {"latency_in", r.budget.latency_in}});
  if (r.trials) j["trials"] = r.trials;
  if (r.minutes) j["minutes"] = r.minutes;
  for (const auto& s : r.stages) {
    nlohmann::json settings = s.settings;
    if (s.optional) settings["optional"] = true;
    j["stages"].push_back({{s.kind, settings}});
  }
  return j;
}

}  // namespace shrink::pipeline
