// shrink distill --teacher T.onnx [--teacher T2.onnx] --student NAME|FILE [--student ...]
//   --temperature 2 --alpha 0.5 [--hint T:S] [--attention T:S] [--rkd W]
//   [--mode offline|mutual|self] [--generations N] [--cache DIR] --epochs 10 -o student.onnx
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "shrink/cli/commands.h"
#include "shrink/cli/output_flags.h"
#include "shrink/cli/validators.h"
#include "shrink/cli/data_options.h"
#include "shrink/cli/train_flags.h"
#include "shrink/core/error.h"
#include "shrink/core/parse.h"
#include "shrink/distill/distill.h"
#include "shrink/onnx/export.h"
#include "shrink/onnx/import.h"
#include "shrink/report/model_stats.h"

namespace shrink::cli {
namespace {

std::vector<distill::Hint> parse_hints(const std::vector<std::string>& specs, const std::string& kind, double weight) {
  std::vector<distill::Hint> out;
  for (const auto& s : specs) {
    size_t colon = s.rfind(':');
    SHRINK_CHECK(colon != std::string::npos && colon > 0 && colon + 1 < s.size(), "--", kind == "fitnet" ? "hint" : "attention",
                 ": '", s, "' is not TEACHER_VALUE:STUDENT_VALUE");
    out.push_back({s.substr(0, colon), s.substr(colon + 1), kind, weight});
  }
  return out;
}

// OUT.onnx -> OUT.<i>.onnx for the i-th extra student of mutual learning.
std::string nth_output(const std::string& path, size_t i) {
  if (i == 0) return path;
  std::filesystem::path p(path);
  return (p.parent_path() / (p.stem().string() + "." + std::to_string(i) + p.extension().string())).string();
}

nlohmann::json model_json(const std::string& name, const ir::Graph& g, double accuracy) {
  report::ModelStats s = report::model_stats(g);
  return {{"model", name}, {"parameters", s.parameters}, {"macs", s.macs}, {"test_accuracy", accuracy}};
}

}  // namespace

void add_distill_command(CLI::App& app) {
  struct Options {
    onnx_io::Storage storage = onnx_io::Storage::Compact;
    std::vector<std::string> teachers, students, hints, attention;
    std::string output, mode = "offline", teacher_weights;
    double hint_weight = 1.0, rkd = 0;
    int generations = 2;
    bool json = false;
    distill::DistillOptions d;
    DataOptions data;
    TrainFlags flags;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("distill", "Train a student from teachers (knowledge distillation) and export it (training options as train, "
                                     "but one warm-up epoch by default)");
  cmd->add_option("--teacher", opt->teachers, "teacher ONNX model (repeat for several: soft targets averaged)");
  cmd->add_option("--teacher-weights", opt->teacher_weights, "comma-separated weights of the teachers' soft targets");
  cmd->add_option("--student", opt->students, "zoo model name or ONNX file (repeat for --mode mutual)")->required();
  cmd->add_option("-o,--output", opt->output, "distilled student (ONNX); mutual: OUT.1.onnx, ... for the others")->required();
  cmd->add_option("--temperature", opt->d.temperature, "softmax temperature T of the soft targets")->capture_default_str();
  cmd->add_option("--alpha", opt->d.alpha, "weight of the soft-target term (1 - alpha on the labels)")->capture_default_str();
  cmd->add_flag("--logit-standardization", opt->d.standardize,
                "z-score teacher and student logits per sample in the soft-target term (Sun et al. 2024)");
  cmd->add_option("--hint", opt->hints, "FitNets hint TEACHER_VALUE:STUDENT_VALUE (node outputs; adapter trained, then dropped)");
  cmd->add_option("--attention", opt->attention, "attention transfer TEACHER_VALUE:STUDENT_VALUE ([N, C, H, W] values)");
  cmd->add_option("--hint-weight", opt->hint_weight, "weight of each hint / attention term")->capture_default_str();
  cmd->add_option("--rkd", opt->rkd, "relational KD on the logits: distance weight W, angle weight 2W (Park et al. 2019)")
      ->check(non_negative())
      ->capture_default_str();
  cmd->add_option("--mode", opt->mode,
                  "offline (frozen teachers), mutual (students teach each other: Deep Mutual Learning), self "
                  "(born-again: each generation teaches the next)")
      ->check(CLI::IsMember({"offline", "mutual", "self"}))
      ->capture_default_str();
  cmd->add_option("--generations", opt->generations, "self: student generations after the first teacher")
      ->check(positive())
      ->capture_default_str();
  cmd->add_option("--mixup", opt->d.mixup,
                  "mix each batch's images with a permutation of themselves, weight ~ Beta(A, A); the teachers "
                  "answer on the mixed images, the label term mixes both labels (function matching, Beyer et al. "
                  "2022); 0: off")
      ->check(non_negative());
  cmd->add_option("--cache", opt->d.cache_dir, "directory caching the teachers' outputs per training sample (no --augment)");
  opt->data.add_to(cmd);
  opt->flags.train.schedule.warmup_epochs = distill::DistillOptions().train.schedule.warmup_epochs;
  opt->flags.add_to(cmd);
  add_storage_flag(cmd, &opt->storage);
  cmd->add_flag("--json", opt->json, "print a JSON summary (no progress bars)");
  cmd->callback([opt] {
    Options& o = *opt;
    distill::DistillOptions d = o.d;
    d.train = o.flags.resolve(o.json);
    if (!o.students.empty() && o.flags.apply_model_recipe(o.students[0], d.train) && !o.json)
      std::printf("vit student: AdamW, lr 0.001, weight decay 0.05 (--optimizer, --lr or --weight-decay sets your own)\n");
    d.hints = parse_hints(o.hints, "fitnet", o.hint_weight);
    for (auto& h : parse_hints(o.attention, "attention", o.hint_weight)) d.hints.push_back(h);
    d.rkd_distance = o.rkd;
    d.rkd_angle = 2 * o.rkd;
    for (const auto& w : comma_list(o.teacher_weights)) {
      d.teacher_weights.push_back(parse_real(w, "--teacher-weights", 0.0));
    }
    SHRINK_CHECK(o.mode == "mutual" || o.students.size() == 1, "--student: one student for --mode ", o.mode, ", got ",
                 o.students.size());
    SHRINK_CHECK(o.mode != "offline" || !o.teachers.empty(), "--mode offline needs --teacher");
    SHRINK_CHECK(o.mode != "mutual" || o.teachers.empty(), "--mode mutual trains students from each other: no --teacher");
    SHRINK_CHECK(o.mode != "self" || o.teachers.size() <= 1, "--mode self starts from at most one --teacher");

    std::vector<ir::Graph> teachers;
    for (const auto& t : o.teachers) {
      SHRINK_CHECK(std::filesystem::exists(t), "--teacher: no file '", t, "'");
      teachers.push_back(onnx_io::import_model(t));
      o.data.apply_to(teachers.back());
    }
    // The first teacher's input size and channels decide an image folder's.
    const ir::Graph* shape_from = teachers.empty() ? nullptr : &teachers[0];
    data::Dataset train_set = o.data.load(true, shape_from), test_set = o.data.load(false, shape_from);
    const bool labeled = train_set.labeled() && test_set.labeled();
    if (!labeled) {
      SHRINK_CHECK(o.mode == "offline", "'", train_set.labeled() ? test_set.name : train_set.name, "' has no labels: --mode ",
                   o.mode, " needs them (offline distillation from a teacher does not)");
      if (d.alpha != 1.0 && !o.json)
        std::fprintf(stderr, "no labels in '%s': distilling from the teachers alone (--alpha 1, not %g); test figures are "
                             "the top-1 agreement with the first teacher\n", train_set.name.c_str(), d.alpha);
      d.alpha = 1.0;
    }
    const int64_t teacher_classes = [&]() -> int64_t {
      if (teachers.empty() || !teachers[0].outputs()[0]->type.has_shape || teachers[0].outputs()[0]->type.rank() != 2)
        return 0;
      return teachers[0].outputs()[0]->type.dims[1];
    }();
    std::vector<ir::Graph> students;
    for (size_t i = 0; i < o.students.size(); ++i) {
      students.push_back(model_from_flag("--student", o.students[i], train_set, o.flags, d.train.seed + i,
                                         train_set.labeled() ? 0 : teacher_classes));
      o.data.apply_to(students.back());
    }
    // Test figures: accuracy, or without labels the top-1 agreement with the first teacher.
    auto score = [&](const ir::Graph& m) {
      return labeled ? train::evaluate(m, test_set).accuracy : train::compare(m, teachers.at(0), test_set).agreement;
    };
    std::vector<const ir::Graph*> tv, sv;
    for (const auto& t : teachers) tv.push_back(&t);
    for (const auto& s : students) sv.push_back(&s);
    distill::check_distillation(tv, sv, d, train_set);  // everything wrong is said before training starts

    nlohmann::json j = {{"mode", o.mode}, {"temperature", d.temperature}, {"alpha", d.alpha}, {"epochs", d.train.epochs},
                        {"seed", d.train.seed}, {"labeled", labeled},
                        {"test_metric", labeled ? "accuracy" : "agreement with the first teacher"}};
    for (size_t i = 0; i < teachers.size(); ++i)
      j["teachers"].push_back(model_json(o.teachers[i], teachers[i], score(teachers[i])));

    if (o.mode == "mutual") {
      std::vector<train::EvalResult> r = distill::mutual(students, train_set, test_set, d);
      for (size_t i = 0; i < students.size(); ++i) {
        onnx_io::export_model(students[i], nth_output(o.output, i), onnx_io::stored_as(o.storage));
        nlohmann::json js = model_json(o.students[i], students[i], r[i].accuracy);
        js["output"] = nth_output(o.output, i);
        j["students"].push_back(js);
      }
    } else if (o.mode == "offline") {
      distill::DistillResult r = distill::distill(students[0], tv, train_set, test_set, d);
      onnx_io::export_model(students[0], o.output, onnx_io::stored_as(o.storage));
      nlohmann::json js = model_json(o.students[0], students[0], score(students[0]));
      js["output"] = o.output;
      js["seconds"] = r.train.seconds;
      j["students"].push_back(js);
      if (!d.cache_dir.empty()) j["cache"] = {{"hit", r.cache_hit}, {"build_seconds", r.cache_seconds}};
    } else {  // self: generation 0 is the teacher, or the student trained alone
      auto make = [&](int gen) {
        if (gen == 0) return students[0].clone();
        ir::Graph s = model_from_flag("--student", o.students[0], train_set, o.flags, d.train.seed + gen);
        o.data.apply_to(s);  // each generation carries the data flags' preprocessing, as the first does
        return s;
      };
      distill::BornAgainResult r =
          distill::born_again(teachers.empty() ? nullptr : &teachers[0], make, o.generations, train_set, test_set, d);
      for (const auto& g : r.generations)
        j["generations"].push_back({{"generation", g.generation}, {"test_accuracy", g.test_accuracy}, {"seconds", g.seconds}});
      onnx_io::export_model(r.model, o.output, onnx_io::stored_as(o.storage));
      nlohmann::json js = model_json(o.students[0], r.model, r.generations.back().test_accuracy);
      js["output"] = o.output;
      j["students"].push_back(js);
    }
    if (o.json) {
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::printf("%-10s %-36s %12s %12s %10s\n", "role", "model", "parameters", "MACs", labeled ? "accuracy" : "agreement");
    for (const auto& t : j["teachers"])
      std::printf("%-10s %-36s %12lld %12lld %9.2f%%\n", "teacher", t["model"].get<std::string>().c_str(),
                  t["parameters"].get<long long>(), t["macs"].get<long long>(), 100 * t["test_accuracy"].get<double>());
    if (j.contains("generations"))
      for (const auto& g : j["generations"])
        std::printf("%-10s generation %-25d %12s %12s %9.2f%%\n", "self", g["generation"].get<int>(), "", "",
                    100 * g["test_accuracy"].get<double>());
    for (const auto& s : j["students"])
      std::printf("%-10s %-36s %12lld %12lld %9.2f%%  -> %s\n", "student", s["model"].get<std::string>().c_str(),
                  s["parameters"].get<long long>(), s["macs"].get<long long>(), 100 * s["test_accuracy"].get<double>(),
                  s["output"].get<std::string>().c_str());
    if (j.contains("cache"))
      std::printf("teacher cache: %s\n", j["cache"]["hit"].get<bool>() ? "read" : "built");
  });
}

}  // namespace shrink::cli
