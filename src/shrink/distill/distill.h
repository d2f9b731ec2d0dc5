// Knowledge distillation on top of the trainer: a student learns from one or more frozen
// teachers (offline), from its peers (online / Deep Mutual Learning), or from its own
// previous generation (self / born-again). Teachers are any graphs shrink imports and run
// in inference mode; their outputs for a training set without augmentation can be cached
// on disk, keyed by the sample's index.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "shrink/data/dataset.h"
#include "shrink/ir/graph.h"
#include "shrink/train/trainer.h"

namespace shrink::distill {

// A feature-based term: a teacher value and a student value, by name (any node output).
struct Hint {
  std::string teacher_value, student_value;
  std::string kind = "fitnet";  // fitnet (adapter + MSE, Romero et al. 2015) or attention (Zagoruyko & Komodakis 2017)
  double weight = 1.0;
};

struct DistillOptions {
  // T=2, alpha=0.5: with a LeNet-5 teacher, T=4 and alpha 0.9 (Hinton et al.'s) left an
  // MLP student below the same MLP trained alone (88.92% against 89.09%, mean of 3 seeds,
  // 10 epochs); T=2, alpha 0.5 beat it on every seed, and the half-width LeNet-5 too.
  double temperature = 2.0;
  double alpha = 0.5;                   // weight of the soft-target term; 1 - alpha on the labels
  bool standardize = false;             // z-score both sides' logits in the KL term (Sun et al. 2024)
  std::vector<double> teacher_weights;  // multi-teacher soft targets (empty: equal); normalised
  std::vector<Hint> hints;              // read from the first teacher
  double rkd_distance = 0, rkd_angle = 0;  // relational KD weights, on the logits
  // Mixup (Zhang et al. 2018) inside distillation, "function matching" (Beyer et al.
  // 2022): each batch's images are mixed with a seeded permutation of themselves, weight
  // lambda ~ Beta(mixup, mixup) per batch; the teachers answer on the mixed images and
  // the label term mixes the two labels by lambda. 0: off.
  double mixup = 0;
  std::string cache_dir;                // cache teacher outputs here ("" = recompute every step)
  train::TrainOptions train;

  // One linear warm-up epoch unless set otherwise: at the start the soft-target gradient
  // is about T times the cross-entropy's (the student's logits are far from the
  // teacher's), and at T >= 2 with SGD at lr 0.05 that killed a LeNet student's ReLUs in
  // the first steps (T=2, alpha=1 ended at 10%).
  DistillOptions() { train.schedule.warmup_epochs = 1; }
};

// Checks what can be checked before training: T > 0, alpha in [0, 1], one weight per
// teacher, the same class count everywhere, hint values that exist (errors list the
// candidates), inputs that take the data.
void check_distillation(const std::vector<const ir::Graph*>& teachers, const std::vector<const ir::Graph*>& students,
                        const DistillOptions& o, const data::Dataset& train_set);

struct DistillResult {
  train::TrainResult train;
  double cache_seconds = 0;  // time spent building the teacher cache (0 when it was read or unused)
  bool cache_hit = false;
};

// Offline KD (response, feature and relation terms) into `student`, in place. Adapters
// for hints are trained with the student and dropped before it is returned.
DistillResult distill(ir::Graph& student, const std::vector<const ir::Graph*>& teachers,
                      const data::Dataset& train_set, const data::Dataset& test_set, const DistillOptions& o);

// Deep Mutual Learning (Zhang et al. 2018): the students train together, each on
// cross-entropy plus KL(mean of the others' predictions || its own) at temperature T.
// Returns one result per student (its test accuracy after training in history).
std::vector<train::EvalResult> mutual(std::vector<ir::Graph>& students, const data::Dataset& train_set,
                                      const data::Dataset& test_set, const DistillOptions& o);

// Born-again networks (Furlanello et al. 2018): generation 0 is `teacher`, or when it is
// null make_student(0) trained alone; each generation g = 1..generations is a fresh
// make_student(g) distilled from generation g - 1. Returns the last generation.
struct Generation {
  int generation = 0;
  double test_accuracy = 0;  // evaluate(), or the caller's score when o.train.score is set
  double seconds = 0;
};
struct BornAgainResult {
  ir::Graph model;
  std::vector<Generation> generations;  // generation 0 only when it was trained here
};
BornAgainResult born_again(const ir::Graph* teacher, const std::function<ir::Graph(int)>& make_student, int generations,
                           const data::Dataset& train_set, const data::Dataset& test_set, const DistillOptions& o);

}  // namespace shrink::distill
