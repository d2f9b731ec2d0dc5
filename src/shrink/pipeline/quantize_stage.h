// The quantization stages: int8 and friends (static with calibration, dynamic, QAT,
// weight-only, fp16; quantize/quantize.h) and weight sharing with codebooks (Deep
// Compression's trained quantization; quantize/codebook.h).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "shrink/pipeline/stage.h"
#include "shrink/quantize/quantize.h"

namespace shrink::pipeline {

struct QuantizeSettings {
  quantize::QuantizeOptions q;  // mode, bits, observers, exclusions, equalize, ...
  int64_t calib_batches = 32, batch = 64;
  int epochs = 3;           // qat
  double lr = 0.01;         // qat
  bool sensitivity = false; // static: each layer alone float, ranked
  double max_drop = -1;     // static: most sensitive layers float until within this many points
  int64_t val_samples = 5000;  // sensitivity / max_drop: a seeded subset of the training images
  uint64_t seed = 0;

  void read(Fields& f);
  nlohmann::json to_json() const;
  void check(bool cli = false) const;
  bool calibrated() const { return q.mode == "static" || q.mode == "qat" || (q.mode == "dynamic" && q.smooth >= 0); }
};

class QuantizeStage : public Stage {
 public:
  explicit QuantizeStage(QuantizeSettings s);
  std::string name() const override { return "quantize"; }
  nlohmann::json settings() const override { return s_.to_json(); }
  bool needs_training_data() const override { return s_.calibrated(); }
  // Report: layers [{node, op, weight_bytes_before, weight_bytes_after | skipped}],
  // calibration_batches, activations, equalized, qat, sensitivity.
  nlohmann::json apply(ir::Graph& model, const StageData& data) override;

 private:
  QuantizeSettings s_;
};

struct CodebookSettings {
  int bits = 4;                          // 2..8
  std::map<std::string, int> layer_bits; // node -> bits
  std::vector<std::string> exclude, exclude_ops;
  int finetune = 0;                      // epochs of centroid fine-tuning
  double lr = 1e-4;
  int64_t batch = 64;
  uint64_t seed = 0;
  // Sensitivity-guided widths: > 0 gives each layer not named in layer_bits the fewest
  // bits in [2, bits] whose codebook, that layer alone shared, costs at most this many
  // accuracy points on (a 2,000-sample subset of) the evaluation split.
  double auto_bits_drop = 0;

  void read(Fields& f);
  nlohmann::json to_json() const;
  void check(bool cli = false) const;
};

class CodebookStage : public Stage {
 public:
  explicit CodebookStage(CodebookSettings s);
  std::string name() const override { return "codebook"; }
  nlohmann::json settings() const override { return s_.to_json(); }
  bool needs_training_data() const override { return s_.finetune > 0; }
  // Report: layers [{node, op, weight, weights, nonzeros, entries, bits,
  // relative_error, note}], finetune {epochs, lr, accuracy_before, best_accuracy},
  // auto_bits {samples, dense_accuracy, layers: {node: {bits: accuracy}}} when chosen so.
  nlohmann::json apply(ir::Graph& model, const StageData& data) override;

 private:
  CodebookSettings s_;
};

}  // namespace shrink::pipeline
