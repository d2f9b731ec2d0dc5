#include "shrink/distill/distill.h"

#include <ATen/ATen.h>
#include <unistd.h>

#include <chrono>
#include <numeric>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <sstream>

#include "shrink/core/error.h"
#include "shrink/core/progress.h"
#include "shrink/dist/dist.h"
#include "shrink/distill/losses.h"
#include "shrink/exec/session.h"
#include "shrink/io/npy.h"
#include "shrink/core/hash.h"
#include "shrink/ops/shape_inference.h"
#include "shrink/passes/inference_passes.h"
#include "shrink/passes/pass.h"

namespace shrink::distill {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> value_names_of(const ir::Graph& g) {
  std::vector<std::string> names;
  for (const auto& n : g.nodes())
    for (const ir::Value* v : n->outputs())
      if (v) names.push_back(v->name);
  return names;
}

std::string candidates(const ir::Graph& g) {
  std::vector<std::string> names = value_names_of(g);
  std::ostringstream s;
  for (size_t i = 0; i < names.size() && i < 40; ++i) s << (i ? ", " : "") << names[i];
  if (names.size() > 40) s << ", ... (" << names.size() << " values)";
  return s.str();
}

const ir::Value* produced_value(const ir::Graph& g, const std::string& name) {
  const ir::Value* v = g.find_value(name);
  return v && v->producer ? v : nullptr;
}

int64_t class_count(const ir::Graph& g) {
  const ir::TensorType& t = g.outputs().at(0)->type;
  return t.has_shape && t.rank() == 2 ? t.dims[1] : -1;
}

std::vector<double> normalized_weights(const std::vector<double>& w, size_t teachers) {
  std::vector<double> out = w.empty() ? std::vector<double>(teachers, 1.0) : w;
  double sum = 0;
  for (double v : out) sum += v;
  for (double& v : out) v /= sum;
  return out;
}

// The bytes of a tensor into a cache key.
void hash_tensor(Hasher& h, const at::Tensor& t) {
  at::Tensor c = t.detach().contiguous();
  h.bytes(c.data_ptr(), c.numel() * c.element_size());
}

// Re-normalises images prepared for the student into what a teacher was trained on.
at::Tensor renormalize(const at::Tensor& x, const data::Normalization& from, const data::Normalization& to) {
  if (from.mean == to.mean && from.std == to.std) return x;
  int64_t c = x.size(1);
  at::Tensor scale = at::empty({c}), shift = at::empty({c});
  for (int64_t i = 0; i < c; ++i) {
    scale[i] = from.std.at(i) / to.std.at(i);
    shift[i] = (from.mean.at(i) - to.mean.at(i)) / to.std.at(i);
  }
  return x * scale.view({1, c, 1, 1}) + shift.view({1, c, 1, 1});
}

// The teachers' outputs (logits per teacher, requested features of the first teacher)
// for each batch: looked up in the cache, or computed in inference mode.
class TeacherBank {
 public:
  TeacherBank(const std::vector<const ir::Graph*>& teachers, const std::vector<std::string>& features,
              const data::Dataset& train_set, const data::Normalization& student_norm, const DistillOptions& o,
              DistillResult& result)
      : teachers_(teachers), features_(features), student_norm_(student_norm) {
    for (size_t i = 0; i < teachers.size(); ++i) {
      exec::SessionOptions so;
      if (i == 0) so.taps = features;
      sessions_.push_back(std::make_unique<exec::Session>(deployed(*teachers[i], so.taps), so));
      norms_.push_back(train::normalization_for(*teachers[i], train_set));
    }
    if (o.cache_dir.empty()) return;
    SHRINK_CHECK(o.train.crop_padding == 0 && !o.train.horizontal_flip && o.mixup == 0,
                 "--cache: teacher outputs can only be cached without augmentation or mixup (the images change "
                 "every epoch)");
    load_or_build_cache(train_set, o.cache_dir, o.train.progress, result);
  }

  void prepare(const data::Batch& b) {
    at::NoGradGuard no_grad;
    logits_.clear();
    feats_.clear();
    if (!cached_logits_.empty()) {
      for (const at::Tensor& t : cached_logits_) logits_.push_back(t.index_select(0, b.samples));
      for (const at::Tensor& t : cached_feats_) feats_.push_back(t.index_select(0, b.samples));
      return;
    }
    run(b.images, student_norm_, logits_, feats_);
  }
  at::Tensor logits(size_t i, int64_t begin, int64_t n) const { return logits_.at(i).slice(0, begin, begin + n); }
  at::Tensor feature(size_t i, int64_t begin, int64_t n) const { return feats_.at(i).slice(0, begin, begin + n); }

 private:
  void run(const at::Tensor& images, const data::Normalization& from, std::vector<at::Tensor>& logits,
           std::vector<at::Tensor>& feats) {
    for (size_t i = 0; i < sessions_.size(); ++i) {
      at::Tensor x = renormalize(images, from, norms_[i]);
      logits.push_back(sessions_[i]->run({x})[0].detach());
      if (i == 0)
        for (size_t f = 0; f < features_.size(); ++f) feats.push_back(sessions_[0]->tap(f).detach());
    }
  }

  void load_or_build_cache(const data::Dataset& d, const std::string& dir, bool progress, DistillResult& result) {
    Hasher h;
    for (size_t i = 0; i < teachers_.size(); ++i) {
      for (const auto& [name, init] : teachers_[i]->initializers()) h.text(name), hash_tensor(h, init.tensor);
      for (const auto& n : teachers_[i]->nodes()) h.text(n->op_type);
      for (double v : norms_[i].mean) h.bytes(&v, sizeof v);
      for (double v : norms_[i].std) h.bytes(&v, sizeof v);
    }
    for (const auto& f : features_) h.text(f);
    SHRINK_CHECK(!d.raw(), "--cache: teacher outputs are cached for image data, not float inputs");
    data::fingerprint(h, d);
    char key[17];
    std::snprintf(key, sizeof key, "%016llx", static_cast<unsigned long long>(h.h));
    fs::path final_dir = fs::path(dir) / (std::string("teacher-") + key);
    auto file = [&](const fs::path& base, const std::string& kind, size_t i) {
      return (base / (kind + std::to_string(i) + ".npy")).string();
    };
    if (fs::exists(final_dir)) {
      for (size_t i = 0; i < teachers_.size(); ++i) cached_logits_.push_back(io::read_npy(file(final_dir, "logits", i)));
      for (size_t f = 0; f < features_.size(); ++f) cached_feats_.push_back(io::read_npy(file(final_dir, "feature", f)));
      SHRINK_CHECK(cached_logits_[0].size(0) == d.size(), final_dir.string(), ": cache holds ", cached_logits_[0].size(0),
                   " samples, the data ", d.size());
      result.cache_hit = true;
      return;
    }
    auto start = std::chrono::steady_clock::now();
    const int64_t batch = 256, batches = (d.size() + batch - 1) / batch;
    // Data-parallel: each rank runs the teachers on every world-size-th batch, and a sum
    // over the ranks (zeros where a rank did not run) gives every rank the whole cache.
    const dist::World& world = dist::world();
    const bool shared = world.active() && batches >= world.size;
    ProgressBar bar("teacher cache", d.size(), "img", progress && world.rank == 0);
    std::vector<std::vector<at::Tensor>> logits(teachers_.size()), feats(features_.size());
    for (int64_t b = 0; b < d.size(); b += batch) {
      int64_t e = std::min(b + batch, d.size());
      if (shared && (b / batch) % world.size != world.rank) {
        for (auto& l : logits) l.emplace_back();  // filled with zeros below
        for (auto& f : feats) f.emplace_back();
        continue;
      }
      at::NoGradGuard no_grad;
      std::vector<int64_t> ids(e - b);
      std::iota(ids.begin(), ids.end(), b);
      at::Tensor images = d.gather(ids);
      data::Normalization identity;
      identity.mean.assign(images.size(1), 0.0);
      identity.std.assign(images.size(1), 1.0);
      at::Tensor x = data::to_float(images, identity);  // [0, 1]: each teacher normalises from here
      std::vector<at::Tensor> l, f;
      run(x, identity, l, f);
      for (size_t i = 0; i < l.size(); ++i) logits[i].push_back(l[i]);
      for (size_t i = 0; i < f.size(); ++i) feats[i].push_back(f[i]);
      bar.update(e, e, "");
    }
    bar.finish("");
    // A batch this rank skipped: zeros of the shape the rank's own batches have.
    auto whole = [&](std::vector<at::Tensor>& parts) {
      at::Tensor like;
      for (const at::Tensor& t : parts)
        if (t.defined()) like = t;
      for (int64_t k = 0; k < static_cast<int64_t>(parts.size()); ++k)
        if (!parts[k].defined()) {
          std::vector<int64_t> shape = like.sizes().vec();
          shape[0] = std::min(batch, d.size() - k * batch);
          parts[k] = at::zeros(shape, like.options());
        }
      return at::cat(parts);
    };
    for (auto& l : logits) cached_logits_.push_back(whole(l));
    for (auto& f : feats) cached_feats_.push_back(whole(f));
    if (shared) {
      dist::sum(cached_logits_);
      dist::sum(cached_feats_);
    }
    result.cache_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (world.rank != 0) return;  // rank 0 writes it
    fs::create_directories(dir);
    fs::path tmp = fs::path(dir) / (std::string("teacher-") + key + ".tmp" + std::to_string(::getpid()));
    fs::create_directories(tmp);
    for (size_t i = 0; i < cached_logits_.size(); ++i) io::write_npy(file(tmp, "logits", i), cached_logits_[i]);
    for (size_t i = 0; i < cached_feats_.size(); ++i) io::write_npy(file(tmp, "feature", i), cached_feats_[i]);
    std::error_code ec;
    fs::rename(tmp, final_dir, ec);  // atomic: a reader sees the whole cache or none
    if (ec) fs::remove_all(tmp);     // another run finished first: its copy is as good
  }

  // The teacher as it is deployed (BatchNorm folded, constants folded, int8 lowered),
  // unless that loses a value a hint reads.
  const ir::Graph& deployed(const ir::Graph& teacher, const std::vector<std::string>& taps) {
    auto g = std::make_unique<ir::Graph>(teacher.clone());
    passes::make_pipeline("inference").run(*g);
    for (const auto& t : taps)
      if (!produced_value(*g, t)) return teacher;
    deployed_.push_back(std::move(g));
    return *deployed_.back();
  }

  std::vector<const ir::Graph*> teachers_;
  std::vector<std::unique_ptr<ir::Graph>> deployed_;
  std::vector<std::string> features_;
  data::Normalization student_norm_;
  std::vector<std::unique_ptr<exec::Session>> sessions_;
  std::vector<data::Normalization> norms_;
  std::vector<at::Tensor> cached_logits_, cached_feats_;
  std::vector<at::Tensor> logits_, feats_;
};

// Exposes each hint's student side as an extra graph output: through a 1x1 Conv (or a
// Gemm for [N, C] values) adapter to the teacher's channel count for FitNets hints, the
// value itself for attention transfer.
void add_hint_outputs(ir::Graph& student, const ir::Graph& teacher, const std::vector<Hint>& hints, uint64_t seed) {
  at::Generator gen = at::detail::createCPUGenerator(seed + 7919);
  for (size_t i = 0; i < hints.size(); ++i) {
    ir::Value* s = student.value(hints[i].student_value);
    const ir::TensorType& tt = teacher.find_value(hints[i].teacher_value)->type;
    if (hints[i].kind == "attention") {
      ir::Node* n = student.add_node("Identity", {s}, {student.unique_name("kd_attention." + std::to_string(i))}, {},
                                     student.unique_name("kd_attention_node." + std::to_string(i)));
      ops::infer_node_types(student, *n);
      student.add_output(n->output(0));
      continue;
    }
    // Channels: axis 1 of [N, C] and [N, C, H, W], the last axis of tokens [N, T, C].
    int64_t cs = s->type.dims.at(s->type.rank() == 3 ? 2 : 1), ct = tt.dims.at(tt.rank() == 3 ? 2 : 1);
    std::string name = student.unique_name("kd_adapter." + std::to_string(i));
    ir::Node* n;
    if (s->type.rank() == 3) {  // tokens: a linear map of each token
      at::Tensor w = at::randn({cs, ct}, gen) * std::sqrt(1.0 / static_cast<double>(cs));
      w.requires_grad_(true);
      ir::Value* wv = student.add_initializer(name + ".weight", w, ir::InitKind::Parameter);
      n = student.add_node("MatMul", {s, wv}, {name + ".out"}, {}, name);
    } else if (s->type.rank() == 4) {
      at::Tensor w = at::randn({ct, cs, 1, 1}, gen) * std::sqrt(2.0 / static_cast<double>(cs));
      w.requires_grad_(true);
      ir::Value* wv = student.add_initializer(name + ".weight", w, ir::InitKind::Parameter);
      n = student.add_node("Conv", {s, wv}, {name + ".out"}, {}, name);
    } else {
      at::Tensor w = at::randn({ct, cs}, gen) * std::sqrt(1.0 / static_cast<double>(cs));
      w.requires_grad_(true);
      ir::Value* wv = student.add_initializer(name + ".weight", w, ir::InitKind::Parameter);
      ir::Attributes a;
      a.set("transB", int64_t{1});
      n = student.add_node("Gemm", {s, wv}, {name + ".out"}, a, name);
    }
    ops::infer_node_types(student, *n);
    student.add_output(n->output(0));
  }
}

void strip_extra_outputs(ir::Graph& g, size_t keep) {
  while (g.outputs().size() > keep) g.remove_output(g.outputs().size() - 1);
  passes::eliminate_dead_code(g);
  g.remove_unused_values();
}

}  // namespace

void check_distillation(const std::vector<const ir::Graph*>& teachers, const std::vector<const ir::Graph*>& students,
                        const DistillOptions& o, const data::Dataset& train_set) {
  SHRINK_CHECK(o.temperature > 0 && std::isfinite(o.temperature), "--temperature must be positive, got ", o.temperature);
  SHRINK_CHECK(o.alpha >= 0 && o.alpha <= 1, "--alpha must be in [0, 1], got ", o.alpha);
  SHRINK_CHECK(o.rkd_distance >= 0 && o.rkd_angle >= 0, "RKD weights must be non-negative");
  SHRINK_CHECK(o.mixup >= 0 && std::isfinite(o.mixup), "--mixup must be >= 0, got ", o.mixup);
  SHRINK_CHECK(o.teacher_weights.empty() || o.teacher_weights.size() == teachers.size(), "--teacher-weights: ",
               o.teacher_weights.size(), " weights for ", teachers.size(), " teachers");
  for (double w : o.teacher_weights) SHRINK_CHECK(w > 0, "--teacher-weights must be positive, got ", w);
  for (const ir::Graph* s : students) train::check_input_fits(*s, train_set);
  int64_t k = students.empty() ? -1 : class_count(*students[0]);
  for (const ir::Graph* g : students)
    SHRINK_CHECK(class_count(*g) == k && k > 0, "students must all give [N, classes] logits of one class count");
  SHRINK_CHECK(!train_set.labeled() || k == train_set.classes, "the student gives ", k, " class scores but '",
               train_set.name, "' has ", train_set.classes, " classes");
  SHRINK_CHECK(train_set.labeled() || o.alpha == 1.0, "'", train_set.name,
               "' has no labels: distillation from the teachers alone needs --alpha 1");
  for (size_t i = 0; i < teachers.size(); ++i) {
    train::check_input_fits(*teachers[i], train_set);
    SHRINK_CHECK(class_count(*teachers[i]) == k, "teacher ", i + 1, " gives ", class_count(*teachers[i]),
                 " class scores, the student ", k, ": they must classify the same classes");
  }
  for (const Hint& h : o.hints) {
    SHRINK_CHECK(!teachers.empty(), "hints need a teacher");
    SHRINK_CHECK(h.kind == "fitnet" || h.kind == "attention", "hint kind '", h.kind, "' is not fitnet or attention");
    const ir::Value* t = produced_value(*teachers[0], h.teacher_value);
    SHRINK_CHECK(t, "hint: the teacher has no value '", h.teacher_value, "'; candidates: ", candidates(*teachers[0]));
    for (const ir::Graph* s : students) {
      const ir::Value* v = produced_value(*s, h.student_value);
      SHRINK_CHECK(v, "hint: the student has no value '", h.student_value, "'; candidates: ", candidates(*s));
      const int64_t rv = v->type.has_shape ? v->type.rank() : -1, rt = t->type.has_shape ? t->type.rank() : -1;
      const bool maps_or_tokens = (rv == 3 || rv == 4) && (rt == 3 || rt == 4);
      SHRINK_CHECK(h.kind == "fitnet" ? (maps_or_tokens || (rv == 2 && rt == 2)) : (rv == 4 && rt == 4), "hint ",
                   h.teacher_value, ":", h.student_value, ": values must both be [N, C, H, W]",
                   h.kind == "fitnet" ? ", tokens [N, T, C] (against tokens or a feature map) or both [N, C]" : "",
                   "; got ", t->type.to_string(), " and ", v->type.to_string());
      if (h.kind == "fitnet" && rv != rt)  // tokens meet a feature map on their patch grid
        for (const ir::Value* tokens : {v, t})
          if (tokens->type.rank() == 3)
            SHRINK_CHECK(tokens->type.dims[1] > 0 && token_grid(tokens->type.dims[1]) > 0, "hint ", h.teacher_value,
                         ":", h.student_value, ": '", tokens->name, "' ", tokens->type.to_string(),
                         " is not a square grid of patch tokens (with or without a class token) to compare with a "
                         "feature map");
      if (h.kind == "fitnet")
        for (const ir::Value* x : {v, t})
          SHRINK_CHECK((x->type.rank() == 4 ? x->type.dims[1] : x->type.dims.back()) > 0, "hint ",
                       h.teacher_value, ":", h.student_value, ": '", x->name, "' ", x->type.to_string(),
                       " has no static channel count");
    }
  }
}

DistillResult distill(ir::Graph& student, const std::vector<const ir::Graph*>& teachers,
                      const data::Dataset& train_set, const data::Dataset& test_set, const DistillOptions& o) {
  SHRINK_CHECK(!teachers.empty(), "distillation needs at least one teacher");
  check_distillation(teachers, {&student}, o, train_set);
  DistillResult result;
  const size_t outputs = student.outputs().size();
  std::vector<std::string> features;
  for (const Hint& h : o.hints) features.push_back(h.teacher_value);
  if (!o.train.resume) add_hint_outputs(student, *teachers[0], o.hints, o.train.seed);
  data::Normalization norm = train::normalization_for(student, train_set);
  train::store_normalization(student, norm);
  TeacherBank bank(teachers, features, train_set, norm, o, result);
  const std::vector<double> weights = normalized_weights(o.teacher_weights, teachers.size());

  train::TrainOptions to = o.train;
  // Mixup: the batch's images mixed in place before the teachers see them; the label
  // term reads `mixed_labels` (each row's partner's label) and `lambda`.
  std::mt19937_64 mix_rng(o.train.seed * 0x9E3779B97F4A7C15ull + 0x6d6978);
  at::Generator mix_gen = at::detail::createCPUGenerator(o.train.seed + 0x6d6978);
  std::gamma_distribution<double> gamma(o.mixup > 0 ? o.mixup : 1.0, 1.0);
  double lambda = 1.0;
  at::Tensor mixed_labels;
  to.before_step = [&](data::Batch& b) {
    if (o.mixup > 0) {
      const double g1 = gamma(mix_rng), g2 = gamma(mix_rng);
      lambda = g1 / (g1 + g2);
      at::Tensor perm = at::randperm(b.images.size(0), mix_gen, at::kLong);
      b.images = b.images * lambda + b.images.index_select(0, perm) * (1.0 - lambda);
      if (b.labels.defined()) mixed_labels = b.labels.index_select(0, perm);
    }
    bank.prepare(b);
  };
  // Unlabeled test data: each epoch is scored by the top-1 agreement with the first teacher.
  if (!test_set.labeled() && !to.score)
    to.score = [&](const ir::Graph& g) { return train::compare(g, *teachers[0], test_set).agreement; };
  to.loss = [&](const std::vector<at::Tensor>& out, const at::Tensor& labels, int64_t begin) {
    const int64_t n = out[0].size(0);
    std::vector<at::Tensor> t;
    for (size_t i = 0; i < teachers.size(); ++i) t.push_back(bank.logits(i, begin, n));
    const at::Tensor targets = soft_targets(t, weights, o.temperature, o.standardize);
    at::Tensor loss;
    if (o.mixup > 0 && o.alpha < 1.0) {  // the label term on both labels of each mixed image
      at::Tensor partner = mixed_labels.narrow(0, begin, n);
      loss = kd_loss(out[0], targets, labels, o.temperature, 1.0, o.standardize) * o.alpha +
             (at::cross_entropy_loss(out[0], labels) * lambda + at::cross_entropy_loss(out[0], partner) * (1.0 - lambda)) *
                 (1.0 - o.alpha);
    } else {
      loss = kd_loss(out[0], targets, labels, o.temperature, o.alpha, o.standardize);
    }
    for (size_t h = 0; h < o.hints.size(); ++h) {
      at::Tensor f = bank.feature(h, begin, n);
      const at::Tensor& s = out.at(outputs + h);
      loss = loss + o.hints[h].weight * (o.hints[h].kind == "attention" ? attention_loss(s, f) : hint_loss(s, f));
    }
    if (o.rkd_distance > 0 || o.rkd_angle > 0) {
      at::Tensor mean = t[0] * weights[0];
      for (size_t i = 1; i < t.size(); ++i) mean = mean + t[i] * weights[i];
      if (o.rkd_distance > 0) loss = loss + o.rkd_distance * rkd_distance_loss(out[0], mean);
      if (o.rkd_angle > 0) loss = loss + o.rkd_angle * rkd_angle_loss(out[0], mean);
    }
    return loss;
  };
  result.train = train::train(student, train_set, test_set, to);
  strip_extra_outputs(student, outputs);
  return result;
}

std::vector<train::EvalResult> mutual(std::vector<ir::Graph>& students, const data::Dataset& train_set,
                                      const data::Dataset& test_set, const DistillOptions& o) {
  SHRINK_CHECK(students.size() >= 2, "mutual learning needs at least two students, got ", students.size());
  std::vector<const ir::Graph*> views;
  for (const auto& s : students) views.push_back(&s);
  check_distillation({}, views, o, train_set);
  SHRINK_CHECK(o.hints.empty() && o.rkd_distance == 0 && o.rkd_angle == 0, "mutual learning uses soft targets only");
  SHRINK_CHECK(o.mixup == 0, "--mixup: offline and self distillation only (mutual learning has no fixed teacher)");
  // One graph holding every student side by side on the shared input; student i's names
  // are prefixed "s<i>/" and its logits are output i.
  ir::Graph merged;
  merged.name = "mutual";
  merged.opset = students[0].opset;
  data::Normalization norm = train::normalization_for(students[0], train_set);
  const ir::Value* input0 = students[0].inputs().at(0);
  ir::Value* input = merged.add_input(input0->name, input0->type);
  for (size_t i = 0; i < students.size(); ++i) {
    const ir::Graph& s = students[i];
    const std::string p = "s" + std::to_string(i) + "/";
    SHRINK_CHECK(s.inputs().size() == 1 && s.inputs()[0]->type.dims == input0->type.dims,
                 "mutual learning: every student must take the same single input");
    for (const auto& [name, init] : s.initializers()) {
      at::Tensor t = init.tensor.detach().clone();
      if (init.kind == ir::InitKind::Parameter) t.requires_grad_(true);
      merged.add_initializer(p + name, t, init.kind);
    }
    for (const auto& n : s.nodes()) {
      std::vector<ir::Value*> in;
      for (ir::Value* v : n->inputs()) in.push_back(!v ? nullptr : v == s.inputs()[0] ? input : merged.value(p + v->name));
      std::vector<std::string> outs;
      for (ir::Value* v : n->outputs()) outs.push_back(v ? p + v->name : "");
      ir::Node* m = merged.add_node(n->op_type, in, outs, n->attrs, p + n->name);
      for (size_t k = 0; k < n->outputs().size(); ++k)
        if (n->output(k)) m->output(k)->type = n->output(k)->type;
    }
    merged.add_output(merged.value(p + s.outputs()[0]->name));
  }
  train::store_normalization(merged, norm);
  for (auto& s : students) train::store_normalization(s, norm);

  train::TrainOptions to = o.train;
  const size_t k = students.size();
  to.loss = [&](const std::vector<at::Tensor>& out, const at::Tensor& labels, int64_t) {
    at::Tensor loss;
    for (size_t i = 0; i < k; ++i) {
      std::vector<at::Tensor> peers;
      for (size_t j = 0; j < k; ++j)
        if (j != i) peers.push_back(out[j].detach());
      at::Tensor l = kd_loss(out[i], soft_targets(peers, std::vector<double>(k - 1, 1.0 / (k - 1)), o.temperature, o.standardize),
                             labels, o.temperature, o.alpha, o.standardize);
      loss = loss.defined() ? loss + l : l;
    }
    return loss;
  };
  // Keep-best per student: the merged graph's own evaluation sees only the first
  // student's logits, so each student is evaluated alone after every epoch and keeps
  // the weights of its own best epoch (as training it alone would).
  auto pull = [&](size_t i) {
    const std::string p = "s" + std::to_string(i) + "/";
    at::NoGradGuard no_grad;
    for (const auto& [name, init] : students[i].initializers())
      students[i].initializer(name)->tensor.detach().copy_(merged.initializer(p + name)->tensor.detach());
  };
  std::vector<train::EvalResult> results(k);
  std::vector<std::map<std::string, at::Tensor>> best(k);
  const bool keep_best = to.keep_best;
  to.keep_best = false;
  to.after_epoch = [&](const train::EpochStats&) {
    for (size_t i = 0; i < k; ++i) {
      pull(i);
      train::EvalResult r = train::evaluate(students[i], test_set);
      if (!keep_best || best[i].empty() || r.accuracy > results[i].accuracy) {
        results[i] = r;
        for (const auto& [name, init] : students[i].initializers()) best[i][name] = init.tensor.detach().clone();
      }
    }
  };
  train::train(merged, train_set, test_set, to);
  for (size_t i = 0; i < k; ++i) {
    if (best[i].empty()) {  // interrupted before the first epoch ended
      pull(i);
      results[i] = train::evaluate(students[i], test_set);
      continue;
    }
    at::NoGradGuard no_grad;
    for (const auto& [name, t] : best[i]) students[i].initializer(name)->tensor.detach().copy_(t);
  }
  return results;
}

BornAgainResult born_again(const ir::Graph* teacher, const std::function<ir::Graph(int)>& make_student, int generations,
                           const data::Dataset& train_set, const data::Dataset& test_set, const DistillOptions& o) {
  SHRINK_CHECK(generations >= 1, "born-again distillation needs at least one generation, got ", generations);
  BornAgainResult out;
  ir::Graph previous;
  if (teacher) {
    previous = teacher->clone();
  } else {
    previous = make_student(0);
    train::TrainResult r0 = train::train(previous, train_set, test_set, o.train);
    out.generations.push_back({0, train::evaluate(previous, test_set).accuracy, r0.seconds});
  }
  for (int gen = 1; gen <= generations; ++gen) {
    ir::Graph next = make_student(gen);
    DistillResult r = distill(next, {&previous}, train_set, test_set, o);
    out.generations.push_back({gen, train::evaluate(next, test_set).accuracy, r.train.seconds});
    previous = std::move(next);
  }
  out.model = std::move(previous);
  return out;
}

}  // namespace shrink::distill
