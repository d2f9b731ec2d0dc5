// ResNet-20 for 28x28 / 32x32 inputs (He et al. 2016, section 4.2): a 3x3 stem, three
// stages of three basic blocks with 16, 32, 64 channels (times the width multiplier),
// global average pooling and a linear classifier. Downsampling shortcuts are 1x1
// convolutions with BatchNorm (option B).
#include <cmath>

#include "shrink/zoo/zoo.h"

namespace shrink::zoo {
namespace {

ir::Value* basic_block(Builder& b, ir::Value* x, int64_t out, int64_t stride) {
  ir::Value* y = b.relu(b.batch_norm(b.conv(x, out, 3, stride, 1, 1, false)));
  y = b.batch_norm(b.conv(y, out, 3, 1, 1, 1, false));
  ir::Value* shortcut = x;
  if (stride != 1 || b.channels(x) != out) shortcut = b.batch_norm(b.conv(x, out, 1, stride, 0, 1, false));
  return b.relu(b.add(y, shortcut));
}

}  // namespace

ir::Value* build_resnet20(Builder& b, ir::Value* x, const ModelOptions& o) {
  auto width = [&](int64_t c) { return std::max<int64_t>(1, std::lround(c * o.width)); };
  x = b.relu(b.batch_norm(b.conv(x, width(16), 3, 1, 1, 1, false)));
  const int64_t channels[3] = {16, 32, 64};
  for (int stage = 0; stage < 3; ++stage) {
    for (int block = 0; block < 3; ++block) {
      b.push_scope("layer" + std::to_string(stage + 1) + "." + std::to_string(block));
      x = basic_block(b, x, width(channels[stage]), stage > 0 && block == 0 ? 2 : 1);
      b.pop_scope();
    }
  }
  return b.linear(b.flatten(b.global_avg_pool(x)), o.classes);
}

}  // namespace shrink::zoo
