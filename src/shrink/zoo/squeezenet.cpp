// SqueezeNet 1.1 (Iandola et al. 2016) for small inputs: a 3x3 stem at stride 1, fire
// modules (1x1 squeeze, then 1x1 and 3x3 expands concatenated), a 1x1 conv classifier
// and global average pooling.
#include "shrink/zoo/zoo.h"

namespace shrink::zoo {
namespace {

ir::Value* fire(Builder& b, ir::Value* x, int64_t squeeze, int64_t expand) {
  ir::Value* s = b.relu(b.conv(x, squeeze, 1));
  return b.concat({b.relu(b.conv(s, expand, 1)), b.relu(b.conv(s, expand, 3, 1, 1))});
}

}  // namespace

ir::Value* build_squeezenet(Builder& b, ir::Value* x, const ModelOptions& o) {
  x = b.relu(b.conv(x, 64, 3, 1, 1));
  x = b.max_pool(x, 3, 2, 0, true);
  const int64_t config[8][2] = {{16, 64}, {16, 64}, {32, 128}, {32, 128}, {48, 192}, {48, 192}, {64, 256}, {64, 256}};
  for (int i = 0; i < 8; ++i) {
    b.push_scope("fire" + std::to_string(i + 2));
    x = fire(b, x, config[i][0], config[i][1]);
    b.pop_scope();
    if (i == 1 || i == 3) x = b.max_pool(x, 3, 2, 0, true);
  }
  x = b.relu(b.conv(b.dropout(x, 0.5f), o.classes, 1));
  return b.flatten(b.global_avg_pool(x));
}

}  // namespace shrink::zoo
