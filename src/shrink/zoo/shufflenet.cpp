// ShuffleNetV2 (Ma et al. 2018) for small inputs: a 3x3 stem at stride 1 without the
// max pool, three stages of units that split the channels, transform one half and
// shuffle the concatenation (Reshape -> Transpose -> Reshape), a 1x1 head to 1024.
// Width 1.0 uses 116/232/464 channels per stage, 0.5 uses 48/96/192.
#include <cmath>

#include "shrink/zoo/zoo.h"

namespace shrink::zoo {
namespace {

ir::Value* conv_bn(Builder& b, ir::Value* x, int64_t out, int64_t k, int64_t stride, int64_t groups, bool relu) {
  ir::Value* y = b.batch_norm(b.conv(x, out, k, stride, k / 2, groups, false));
  return relu ? b.relu(y) : y;
}

ir::Value* unit(Builder& b, ir::Value* x, int64_t out, int64_t stride) {
  int64_t half = out / 2;
  ir::Value* left;
  ir::Value* right;
  if (stride == 1) {
    std::vector<ir::Value*> parts = b.split_channels(x, 2);
    left = parts[0];
    right = parts[1];
  } else {
    left = conv_bn(b, conv_bn(b, x, b.channels(x), 3, stride, b.channels(x), false), half, 1, 1, 1, true);
    right = x;
  }
  right = conv_bn(b, right, half, 1, 1, 1, true);
  right = conv_bn(b, right, half, 3, stride, half, false);  // depthwise
  right = conv_bn(b, right, half, 1, 1, 1, true);
  return b.channel_shuffle(b.concat({left, right}), 2);
}

}  // namespace

ir::Value* build_shufflenetv2(Builder& b, ir::Value* x, const ModelOptions& o) {
  int64_t stage_channels[3];
  if (std::abs(o.width - 0.5) < 1e-9) {
    stage_channels[0] = 48, stage_channels[1] = 96, stage_channels[2] = 192;
  } else {
    for (int i = 0; i < 3; ++i) stage_channels[i] = 2 * std::lround(116 * (1 << i) * o.width / 2);
  }
  const int repeats[3] = {4, 8, 4};
  x = conv_bn(b, x, 24, 3, 1, 1, true);
  for (int s = 0; s < 3; ++s) {
    for (int i = 0; i < repeats[s]; ++i) {
      b.push_scope("stage" + std::to_string(s + 2) + "." + std::to_string(i));
      x = unit(b, x, stage_channels[s], i == 0 ? 2 : 1);
      b.pop_scope();
    }
  }
  x = conv_bn(b, x, 1024, 1, 1, 1, true);
  return b.linear(b.flatten(b.global_avg_pool(x)), o.classes);
}

}  // namespace shrink::zoo
