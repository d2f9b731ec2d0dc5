// MobileNetV2 (Sandler et al. 2018) for small inputs: the ImageNet configuration with
// the stem and the second stage at stride 1 (as CIFAR ports do), so a 28x28 or 32x32
// image reaches 4x4 before the 1x1 head.
#include <cmath>

#include "shrink/zoo/zoo.h"

namespace shrink::zoo {
namespace {

// Channels rounded to a multiple of 8, never below 90% of the request (the paper's code).
int64_t make_divisible(double v, int64_t divisor = 8) {
  int64_t r = std::max<int64_t>(divisor, static_cast<int64_t>(v + divisor / 2.0) / divisor * divisor);
  if (r < 0.9 * v) r += divisor;
  return r;
}

ir::Value* inverted_residual(Builder& b, ir::Value* x, int64_t out, int64_t stride, int64_t expand) {
  int64_t in = b.channels(x), hidden = in * expand;
  ir::Value* y = x;
  if (expand != 1) y = b.relu6(b.batch_norm(b.conv(y, hidden, 1, 1, 0, 1, false)));
  y = b.relu6(b.batch_norm(b.conv(y, hidden, 3, stride, 1, hidden, false)));  // depthwise
  y = b.batch_norm(b.conv(y, out, 1, 1, 0, 1, false));                         // linear bottleneck
  return stride == 1 && in == out ? b.add(x, y) : y;
}

}  // namespace

ir::Value* build_mobilenetv2(Builder& b, ir::Value* x, const ModelOptions& o) {
  struct Stage {
    int64_t expand, channels, repeats, stride;
  };
  const Stage stages[] = {{1, 16, 1, 1}, {6, 24, 2, 1}, {6, 32, 3, 2}, {6, 64, 4, 2},
                          {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  x = b.relu6(b.batch_norm(b.conv(x, make_divisible(32 * o.width), 3, 1, 1, 1, false)));
  int index = 0;
  for (const Stage& s : stages) {
    for (int64_t i = 0; i < s.repeats; ++i) {
      b.push_scope("features." + std::to_string(++index));
      x = inverted_residual(b, x, make_divisible(s.channels * o.width), i == 0 ? s.stride : 1, s.expand);
      b.pop_scope();
    }
  }
  int64_t last = make_divisible(1280 * std::max(1.0, o.width));
  x = b.relu6(b.batch_norm(b.conv(x, last, 1, 1, 0, 1, false)));
  x = b.flatten(b.global_avg_pool(x));
  return b.linear(b.dropout(x, 0.2f), o.classes);
}

}  // namespace shrink::zoo
