#include <gtest/gtest.h>
#include "shrink/ops/registry.h"
TEST(Smoke, RegistryHasOps) { EXPECT_GT(shrink::ops::OpRegistry::instance().names().size(), 50u); }
