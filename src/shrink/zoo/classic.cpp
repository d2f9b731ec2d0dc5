// The classic networks of the pruning literature: MLP, LeNet-300-100, LeNet-5. The width
// multiplier scales every hidden layer (e.g. 0.5 for a student half as wide).
#include <algorithm>
#include <cmath>

#include "shrink/zoo/zoo.h"

namespace shrink::zoo {
namespace {

int64_t scaled(int64_t n, double width) { return std::max<int64_t>(1, std::lround(n * width)); }

}  // namespace

ir::Value* build_mlp(Builder& b, ir::Value* x, const ModelOptions& o) {
  x = b.flatten(x);
  x = b.relu(b.linear(x, scaled(128, o.width)));
  return b.linear(x, o.classes);
}

ir::Value* build_lenet300(Builder& b, ir::Value* x, const ModelOptions& o) {
  x = b.flatten(x);
  x = b.relu(b.linear(x, scaled(300, o.width)));
  x = b.relu(b.linear(x, scaled(100, o.width)));
  return b.linear(x, o.classes);
}

// On 28x28 the first conv pads by 2, so both 28x28 and 32x32 reach 16x5x5.
ir::Value* build_lenet5(Builder& b, ir::Value* x, const ModelOptions& o) {
  int64_t pad = o.input[1] == 28 ? 2 : 0;
  x = b.max_pool(b.relu(b.conv(x, scaled(6, o.width), 5, 1, pad)), 2, 2);
  x = b.max_pool(b.relu(b.conv(x, scaled(16, o.width), 5)), 2, 2);
  x = b.flatten(x);
  x = b.relu(b.linear(x, scaled(120, o.width)));
  x = b.relu(b.linear(x, scaled(84, o.width)));
  return b.linear(x, o.classes);
}

// The LeNet-5 of Caffe's MNIST example (examples/mnist/lenet.prototxt), the network that
// Han et al. pruned (12x) and Deep Compression compressed (39x): 20 and 50 5x5 convs with
// no activation, max pooling, 500 hidden units; 431k parameters on 28x28.
ir::Value* build_lenet5_caffe(Builder& b, ir::Value* x, const ModelOptions& o) {
  x = b.max_pool(b.conv(x, scaled(20, o.width), 5), 2, 2);
  x = b.max_pool(b.conv(x, scaled(50, o.width), 5), 2, 2);
  x = b.flatten(x);
  x = b.relu(b.linear(x, scaled(500, o.width)));
  return b.linear(x, o.classes);
}

}  // namespace shrink::zoo
