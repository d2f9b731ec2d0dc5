// Builds graphs layer by layer with PyTorch's default initialisations, inferring
// shapes as it goes (so a layer knows its input channels). Used by the model zoo.
#pragma once
#include <string>
#include <vector>

#include "shrink/ir/graph.h"

namespace shrink::zoo {

class Builder {
 public:
  explicit Builder(ir::Graph& graph) : g_(graph) {}

  ir::Value* input(const std::string& name, std::vector<int64_t> chw);  // [N, C, H, W], N symbolic
  // Conv with PyTorch's default init; without bias (followed by BatchNorm) Kaiming
  // normal, fan_out, as torchvision initialises its ResNets and MobileNets.
  ir::Value* conv(ir::Value* x, int64_t out, int64_t kernel, int64_t stride = 1, int64_t pad = 0,
                  int64_t groups = 1, bool bias = true);
  ir::Value* batch_norm(ir::Value* x);
  ir::Value* relu(ir::Value* x);
  ir::Value* relu6(ir::Value* x);
  ir::Value* max_pool(ir::Value* x, int64_t kernel, int64_t stride, int64_t pad = 0, bool ceil_mode = false);
  ir::Value* global_avg_pool(ir::Value* x);
  ir::Value* flatten(ir::Value* x);
  ir::Value* linear(ir::Value* x, int64_t out, bool bias = true);  // Gemm, transB = 1
  ir::Value* dropout(ir::Value* x, float ratio);
  ir::Value* add(ir::Value* a, ir::Value* b);
  ir::Value* concat(const std::vector<ir::Value*>& xs, int64_t axis = 1);
  std::vector<ir::Value*> split_channels(ir::Value* x, int parts);
  // ShuffleNet's channel shuffle: Reshape -> Transpose -> Reshape.
  ir::Value* channel_shuffle(ir::Value* x, int64_t groups);
  void output(ir::Value* x, const std::string& name = "logits");

  // Transformer layers, in the forms PyTorch exports them.
  // nn.Linear on [..., in]: MatMul by W^T [in, out] (+ Add of the bias), PyTorch's init.
  ir::Value* dense(ir::Value* x, int64_t out, const std::string& name = "fc", bool bias = true);
  ir::Value* layer_norm(ir::Value* x, float epsilon = 1e-6f);  // over the last axis, weight 1, bias 0
  ir::Value* gelu(ir::Value* x);                                // exact: x * 0.5 * (1 + erf(x / sqrt(2)))
  ir::Value* softmax(ir::Value* x, int64_t axis = -1);
  ir::Value* matmul(ir::Value* a, ir::Value* b);
  ir::Value* scale(ir::Value* x, float factor);                 // Mul by a scalar constant
  ir::Value* reshape(ir::Value* x, const std::vector<int64_t>& shape);  // 0 copies, -1 infers
  ir::Value* transpose(ir::Value* x, const std::vector<int64_t>& perm);
  // A learned tensor (normal, std), e.g. a position embedding, added to x.
  ir::Value* add_learned(ir::Value* x, const std::string& base, std::vector<int64_t> shape, double std);
  // A learned token [1, 1, D] (zeros, as torchvision's class token) prepended to x [N, T, D].
  ir::Value* prepend_token(ir::Value* x, const std::string& base);
  ir::Value* take(ir::Value* x, int64_t axis, int64_t index);   // Gather of one index: drops the axis

  // Layer names follow a scope, like PyTorch module paths ("layer1.0.conv1").
  void push_scope(const std::string& s) { scope_.push_back(s); }
  void pop_scope() { scope_.pop_back(); }
  int64_t channels(const ir::Value* x) const { return x->type.dims.at(1); }

 private:
  ir::Value* node(const std::string& op, const std::string& base, std::vector<ir::Value*> inputs,
                  ir::Attributes attrs = {});
  ir::Value* param(const std::string& name, at::Tensor t, ir::InitKind kind = ir::InitKind::Parameter);
  std::string scoped(const std::string& base);

  ir::Graph& g_;
  std::vector<std::string> scope_;
  std::map<std::string, int> counters_;
};

}  // namespace shrink::zoo
