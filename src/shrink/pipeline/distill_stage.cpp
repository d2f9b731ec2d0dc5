#include "shrink/pipeline/distill_stage.h"

#include <filesystem>

#include "shrink/core/error.h"
#include "shrink/distill/distill.h"
#include "shrink/onnx/import.h"
#include "shrink/report/model_stats.h"
#include "shrink/zoo/zoo.h"

namespace shrink::pipeline {

void DistillSettings::read(Fields& f) {
  f.read("student", student);
  f.read("width", width);
  f.read("temperature", temperature);
  f.read("alpha", alpha);
  f.read("epochs", epochs);
  f.read("lr", lr);
  f.read("batch", batch);
  f.read("warmup", warmup);
  f.read("seed", seed);
  f.check(zoo::has_model(student) || std::filesystem::exists(student), "student",
          "expected a zoo model (see `shrink zoo`) or an ONNX file, got '" + student + "'");
  f.check(width > 0 && width <= 4, "width", "expected a width multiplier in (0, 4]");
  f.check(temperature > 0, "temperature", "expected a temperature > 0");
  f.check(alpha >= 0 && alpha <= 1, "alpha", "expected a weight in [0, 1]");
  f.check(epochs > 0, "epochs", "expected a positive count");
  f.check(lr > 0, "lr", "expected a positive learning rate");
  f.check(batch > 0, "batch", "expected a positive batch size");
  f.check(warmup >= 0 && warmup <= epochs, "warmup", "expected 0 to epochs warm-up epochs");
  f.finish();
}

nlohmann::json DistillSettings::to_json() const {
  nlohmann::json j = {{"student", student}, {"temperature", temperature}, {"alpha", alpha}, {"epochs", epochs},
                      {"lr", lr}, {"batch", batch}, {"warmup", warmup}, {"seed", seed}};
  if (zoo::has_model(student)) j["width"] = width;
  return j;
}

nlohmann::json DistillStage::apply(ir::Graph& g, const StageData& data) {
  SHRINK_CHECK(data.train && data.eval, "distill: needs training data and an evaluation split");
  const data::Dataset& train_set = *data.train;
  ir::Graph student;
  if (zoo::has_model(s_.student)) {
    SHRINK_CHECK(train_set.labeled(), "distill: a zoo student is built for the data's classes, but '", train_set.name,
                 "' has no labels");
    SHRINK_CHECK(!train_set.raw() && train_set.sample_shape().size() == 3, "distill: a zoo student takes images, but '",
                 train_set.name, "' holds float inputs");
    zoo::ModelOptions mo;
    mo.input = train_set.sample_shape();
    mo.classes = train_set.classes;
    mo.width = s_.width;
    mo.seed = s_.seed;
    student = zoo::build_model(s_.student, mo);
  } else {
    student = onnx_io::import_model(s_.student);
  }
  // The student is fed as the teacher is: its preprocessing and normalisation.
  for (const auto& [k, v] : g.metadata)
    if (k.rfind("shrink.", 0) == 0) student.metadata[k] = v;
  distill::DistillOptions d;
  d.temperature = s_.temperature;
  d.alpha = s_.alpha;
  d.train.epochs = s_.epochs;
  d.train.lr = s_.lr;
  d.train.batch_size = s_.batch;
  d.train.seed = s_.seed;
  d.train.schedule.warmup_epochs = s_.warmup;
  d.train.progress = data.progress;
  distill::check_distillation({&g}, {&student}, d, train_set);
  distill::DistillResult r = distill::distill(student, {&g}, train_set, *data.eval, d);
  nlohmann::json j = {{"student", s_.student}, {"teacher_parameters", report::model_stats(g).parameters},
                      {"student_parameters", report::model_stats(student).parameters},
                      {"best_accuracy", r.train.best_accuracy}, {"best_epoch", r.train.best_epoch},
                      {"seconds", r.train.seconds}};
  g = std::move(student);
  return j;
}

}  // namespace shrink::pipeline
