// The distillation stage: the model in hand becomes the teacher of a smaller student
// (a zoo architecture at a width, or an ONNX file), trained with soft targets (Hinton
// et al. 2015; distill/distill.h); the stage returns the student.
#pragma once
#include <string>

#include "shrink/pipeline/stage.h"

namespace shrink::pipeline {

struct DistillSettings {
  std::string student = "lenet5";  // zoo name or ONNX file
  double width = 0.5;              // zoo width multiplier
  double temperature = 2.0, alpha = 0.5;
  int epochs = 10;
  double lr = 0.05;
  int64_t batch = 128;
  int warmup = 1;
  uint64_t seed = 0;

  void read(Fields& f);
  nlohmann::json to_json() const;
};

class DistillStage : public Stage {
 public:
  explicit DistillStage(DistillSettings s) : s_(std::move(s)) {}
  std::string name() const override { return "distill"; }
  nlohmann::json settings() const override { return s_.to_json(); }
  bool needs_training_data() const override { return true; }
  // Replaces `model` by the trained student. Report: student, teacher_parameters,
  // student_parameters, best_accuracy, best_epoch, seconds.
  nlohmann::json apply(ir::Graph& model, const StageData& data) override;

 private:
  DistillSettings s_;
};

}  // namespace shrink::pipeline
