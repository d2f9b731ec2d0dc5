#include "shrink/zoo/zoo.h"

#include <ATen/ATen.h>

#include "shrink/core/error.h"
#include "shrink/ops/shape_inference.h"

namespace shrink::zoo {

const std::vector<ModelEntry>& models() {
  static const std::vector<ModelEntry> entries = {
      {"mlp", "MLP 784-128-10 (the seed network), ReLU", build_mlp},
      {"lenet300", "LeNet-300-100: fully connected 300-100 (Han et al. 2015)", build_lenet300},
      {"lenet5", "LeNet-5: two 5x5 convs, max pooling, 120-84 classifier (LeCun et al. 1998)", build_lenet5},
      {"lenet5-caffe", "LeNet-5 as Caffe's MNIST example: 20-50 5x5 convs, 500 hidden (Han et al. 2016's)",
       build_lenet5_caffe},
      {"resnet20", "ResNet-20 for small images: 3 stages x 3 basic blocks (He et al. 2016)", build_resnet20},
      {"mobilenetv2", "MobileNetV2: inverted residuals, depthwise convs, ReLU6 (Sandler et al. 2018)", build_mobilenetv2},
      {"squeezenet", "SqueezeNet 1.1: fire modules (Iandola et al. 2016)", build_squeezenet},
      {"shufflenetv2", "ShuffleNetV2: channel split and shuffle (Ma et al. 2018)", build_shufflenetv2},
      {"vit", "Vision Transformer: 4x4 patches, class token, 4 pre-norm blocks of 4-head attention and GELU MLP, width 64 (Dosovitskiy et al. 2021), --depth, --heads",
       build_vit},
  };
  return entries;
}

bool has_model(const std::string& name) {
  for (const auto& m : models())
    if (m.name == name) return true;
  return false;
}

ir::Graph build_model(const std::string& name, const ModelOptions& options) {
  const ModelEntry* entry = nullptr;
  std::string known;
  for (const auto& m : models()) {
    if (m.name == name) entry = &m;
    known += (known.empty() ? "" : ", ") + m.name;
  }
  SHRINK_CHECK(entry, "unknown model '", name, "' (zoo: ", known, ")");
  SHRINK_CHECK(options.input.size() == 3, "input shape must be C,H,W");
  SHRINK_CHECK(options.classes >= 2, "a classifier needs at least 2 classes");
  SHRINK_CHECK(options.width > 0, "width multiplier must be positive");
  SHRINK_CHECK(name == "vit" || (options.depth == 0 && options.heads == 0),
               "depth and heads shape vit, not '", name, "'");
  SHRINK_CHECK(options.depth >= 0 && options.heads >= 0, "depth and heads must be positive");
  at::manual_seed(options.seed);
  ir::Graph g;
  g.name = name;
  Builder b(g);
  ir::Value* x = b.input("input", options.input);
  b.output(entry->build(b, x, options));
  ops::verify_graph(g);
  return g;
}

}  // namespace shrink::zoo
