// LR schedules against their formulas.
#include <gtest/gtest.h>

#include <cmath>

#include "shrink/core/error.h"
#include "shrink/train/schedule.h"

using shrink::train::learning_rate;
using shrink::train::ScheduleOptions;

TEST(Schedule, CosineStepMultistepWarmup) {
  ScheduleOptions cos;
  cos.kind = "cosine";
  EXPECT_DOUBLE_EQ(learning_rate(cos, 0.1, 0, 10), 0.1);
  EXPECT_NEAR(learning_rate(cos, 0.1, 5, 10), 0.05, 1e-12);
  EXPECT_NEAR(learning_rate(cos, 0.1, 2.5, 10), 0.05 * (1 + std::cos(M_PI / 4)), 1e-12);
  EXPECT_NEAR(learning_rate(cos, 0.1, 10, 10), 0.0, 1e-12);

  ScheduleOptions step;
  step.kind = "step";
  step.step_size = 3;
  step.gamma = 0.5;
  EXPECT_DOUBLE_EQ(learning_rate(step, 1.0, 2.99, 10), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(step, 1.0, 3.0, 10), 0.5);
  EXPECT_DOUBLE_EQ(learning_rate(step, 1.0, 7.5, 10), 0.25);

  ScheduleOptions multi;
  multi.kind = "multistep";
  multi.milestones = {2, 5};
  EXPECT_DOUBLE_EQ(learning_rate(multi, 1.0, 1.9, 10), 1.0);
  EXPECT_NEAR(learning_rate(multi, 1.0, 2.0, 10), 0.1, 1e-12);
  EXPECT_NEAR(learning_rate(multi, 1.0, 9.0, 10), 0.01, 1e-12);

  ScheduleOptions warm;
  warm.kind = "constant";
  warm.warmup_epochs = 2;
  EXPECT_DOUBLE_EQ(learning_rate(warm, 0.4, 0.5, 10), 0.1);
  EXPECT_DOUBLE_EQ(learning_rate(warm, 0.4, 3.0, 10), 0.4);

  ScheduleOptions bad;
  bad.kind = "linear-ish";
  EXPECT_THROW(shrink::train::validate_schedule(bad), shrink::Error);
}
