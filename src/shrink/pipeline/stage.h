// A stage: one compression technique as a library call with one shape, model + data +
// settings -> the model changed in place + a report. The subcommands are parse ->
// stage -> print, and `shrink compress` chains the same stages (pipeline/compress.h).
// Like passes::Pass, a stage is small: a name, its settings as JSON (the recipe's
// spelling, also the cache key) and apply().
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "shrink/data/dataset.h"
#include "shrink/ir/graph.h"

namespace shrink::pipeline {

// What a stage may read. `train` feeds fine-tuning, calibration and importance
// estimates; `eval` is what training evaluates each epoch and keeps the best epoch by
// (compress gives it a validation split held out of the training data, never the test
// set; a subcommand gives it the test split, as it always did).
struct StageData {
  const data::Dataset* train = nullptr;
  const data::Dataset* eval = nullptr;
  bool progress = true;  // progress bars on stderr
  // Replaces eval accuracy where a stage scores models itself (quantize's fallback,
  // factorize's rank search): higher is better. Unset: accuracy on `eval`, or top-1
  // agreement with the model the stage started from when `eval` has no labels.
  std::function<double(const ir::Graph&)> score;
};

class Stage {
 public:
  virtual ~Stage() = default;
  virtual std::string name() const = 0;
  // Every setting, as a recipe spells it (defaults included): the stage's identity in
  // a cache key and in a report's lineage.
  virtual nlohmann::json settings() const = 0;
  // Whether apply() reads data.train (fine-tuning, calibration, Taylor importance).
  virtual bool needs_training_data() const = 0;
  // Changes `model`; returns what it did (per round, per layer), JSON for reports.
  virtual nlohmann::json apply(ir::Graph& model, const StageData& data) = 0;
};

// Reads a stage's settings from JSON (a recipe entry), one key at a time; a key of the
// wrong type, a bad value or a key no setting has is a one-line error naming the key
// and where it is (`locate` maps a key to "FILE:LINE" for recipes read from YAML).
class Fields {
 public:
  using Locate = std::function<std::string(const std::string& key)>;
  Fields(const nlohmann::json& j, std::string where, Locate locate = {});

  void read(const char* key, std::string& out);
  void read(const char* key, double& out);
  void read(const char* key, int& out);
  void read(const char* key, int64_t& out);
  void read(const char* key, uint64_t& out);
  void read(const char* key, bool& out);
  void read(const char* key, std::vector<std::string>& out);  // a list, or "a,b,c"
  // {NAME: VALUE, ...} or "NAME=VALUE,...".
  void read(const char* key, std::map<std::string, double>& out);
  void read(const char* key, std::map<std::string, int>& out);
  // Fails unless `ok`, naming the key and what was expected.
  void check(bool ok, const char* key, const std::string& expected) const;
  // Every key of the object was read (else: the first unknown one).
  void finish() const;
  bool has(const char* key) const { return j_.contains(key); }

 private:
  [[noreturn]] void bad(const std::string& key, const std::string& what) const;
  const nlohmann::json& at(const char* key);
  const nlohmann::json& j_;
  std::string where_;
  Locate locate_;
  std::vector<std::string> read_;
};

// A stage of the named kind (prune, quantize, codebook, factorize, finetune, distill)
// from its settings, checked; unknown names list the known ones.
std::unique_ptr<Stage> make_stage(const std::string& kind, const nlohmann::json& settings, const std::string& where = "",
                                  const Fields::Locate& locate = {});
std::vector<std::string> stage_kinds();

// A setting's name in an error: "max_ratio" in a recipe, "--max-ratio" on the command line.
std::string setting_name(const std::string& key, bool cli);

}  // namespace shrink::pipeline
