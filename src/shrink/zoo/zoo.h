// The model zoo: classic and efficient architectures built with the IR builder.
#pragma once
#include <string>
#include <vector>

#include "shrink/ir/graph.h"
#include "shrink/zoo/builder.h"

namespace shrink::zoo {

struct ModelOptions {
  std::vector<int64_t> input = {1, 28, 28};  // C, H, W
  int64_t classes = 10;
  double width = 1.0;  // width multiplier (every model but squeezenet: hidden layers / channels scaled)
  uint64_t seed = 0;   // initialisation
  int64_t depth = 0;   // transformers (vit): encoder blocks; 0 = the model's default
  int64_t heads = 0;   // transformers (vit): attention heads; 0 = the model's default
};

struct ModelEntry {
  std::string name, description;
  // Adds the layers from x to the logits and returns the logits.
  ir::Value* (*build)(Builder&, ir::Value* x, const ModelOptions&);
};

const std::vector<ModelEntry>& models();
bool has_model(const std::string& name);
// The named model with seeded initialisation; error naming the known ones if unknown.
ir::Graph build_model(const std::string& name, const ModelOptions& options);

// One builder per family (each in its own file).
ir::Value* build_mlp(Builder&, ir::Value*, const ModelOptions&);
ir::Value* build_lenet300(Builder&, ir::Value*, const ModelOptions&);
ir::Value* build_lenet5(Builder&, ir::Value*, const ModelOptions&);
ir::Value* build_lenet5_caffe(Builder&, ir::Value*, const ModelOptions&);
ir::Value* build_resnet20(Builder&, ir::Value*, const ModelOptions&);
ir::Value* build_mobilenetv2(Builder&, ir::Value*, const ModelOptions&);
ir::Value* build_squeezenet(Builder&, ir::Value*, const ModelOptions&);
ir::Value* build_shufflenetv2(Builder&, ir::Value*, const ModelOptions&);
ir::Value* build_vit(Builder&, ir::Value*, const ModelOptions&);

}  // namespace shrink::zoo
