// The classic networks of the pruning literature: MLP, LeNet-300-100, LeNet-5.
#include "shrink/zoo/zoo.h"

namespace shrink::zoo {

ir::Value* build_mlp(Builder& b, ir::Value* x, const ModelOptions& o) {
  x = b.flatten(x);
  x = b.relu(b.linear(x, 128));
  return b.linear(x, o.classes);
}

ir::Value* build_lenet300(Builder& b, ir::Value* x, const ModelOptions& o) {
  x = b.flatten(x);
  x = b.relu(b.linear(x, 300));
  x = b.relu(b.linear(x, 100));
  return b.linear(x, o.classes);
}

// On 28x28 the first conv pads by 2, so both 28x28 and 32x32 reach 16x5x5.
ir::Value* build_lenet5(Builder& b, ir::Value* x, const ModelOptions& o) {
  int64_t pad = o.input[1] == 28 ? 2 : 0;
  x = b.max_pool(b.relu(b.conv(x, 6, 5, 1, pad)), 2, 2);
  x = b.max_pool(b.relu(b.conv(x, 16, 5)), 2, 2);
  x = b.flatten(x);
  x = b.relu(b.linear(x, 120));
  x = b.relu(b.linear(x, 84));
  return b.linear(x, o.classes);
}

}  // namespace shrink::zoo
