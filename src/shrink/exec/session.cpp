#include "shrink/exec/session.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <chrono>
#include <optional>
#include <unordered_set>

#include "shrink/core/allocator.h"
#include "shrink/core/error.h"
#include "shrink/core/threads.h"

namespace shrink::exec {

int Session::slot_of(const ir::Value* value) const {
  if (!value) return -1;
  auto it = slot_index_.find(value);
  SHRINK_CHECK(it != slot_index_.end(), "value '", value->name, "' has no slot");
  return it->second;
}

Session::Session(const ir::Graph& graph, SessionOptions options) : graph_(&graph) {
  tune_allocator();
  ensure_default_threads();
  context_.training = options.training;
  auto add_slot = [this](const ir::Value* v) {
    if (!v || slot_index_.count(v)) return;
    slot_index_[v] = static_cast<int>(slots_.size());
    slots_.emplace_back();
  };
  for (const ir::Value* in : graph.inputs()) add_slot(in);
  for (const auto& [name, init] : graph.initializers()) {
    const ir::Value* v = graph.value(name);
    add_slot(v);
    slots_[slot_of(v)] = init.tensor;
    fixed_slots_.push_back(slot_of(v));
  }
  for (const auto& node : graph.nodes())
    for (const ir::Value* out : node->outputs()) add_slot(out);

  for (const ir::Value* in : graph.inputs()) input_slots_.push_back(slot_of(in));
  for (const ir::Value* out : graph.outputs()) output_slots_.push_back(slot_of(out));
  for (const std::string& name : options.taps) {
    const ir::Value* v = graph.find_value(name);
    SHRINK_CHECK(v, "tap '", name, "' is not a value of graph '", graph.name, "'");
    tap_slots_.push_back(slot_of(v));
    tap_names_.push_back(name);
  }

  const ops::OpRegistry& registry = ops::OpRegistry::instance();
  for (const auto& node : graph.nodes()) {
    Step step{nullptr, {}, {}, {}, node.get()};
    try {
      step.kernel = registry.get(*node).make_kernel(*node);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      fail(node->describe(), ": ", e.what());
    }
    for (const ir::Value* in : node->inputs()) step.inputs.push_back(slot_of(in));
    for (const ir::Value* out : node->outputs()) step.outputs.push_back(slot_of(out));
    steps_.push_back(std::move(step));
  }

  // Free each intermediate after its last reader, unless it must outlive the run.
  std::unordered_set<int> keep(fixed_slots_.begin(), fixed_slots_.end());
  keep.insert(output_slots_.begin(), output_slots_.end());
  keep.insert(tap_slots_.begin(), tap_slots_.end());
  std::unordered_map<int, size_t> last_use;
  for (size_t i = 0; i < steps_.size(); ++i) {
    for (int s : steps_[i].inputs)
      if (s >= 0) last_use[s] = i;
    for (int s : steps_[i].outputs)
      if (s >= 0 && !last_use.count(s)) last_use[s] = i;  // produced but never read
  }
  for (const auto& [slot, step] : last_use)
    if (!keep.count(slot)) steps_[step].release.push_back(slot);
  if (options.profile)
    for (const Step& step : steps_) profile_.push_back({step.node});
}

void Session::check_input(size_t index, const at::Tensor& t) const {
  const ir::Value* v = graph_->inputs()[index];
  const ir::TensorType& want = v->type;
  auto got = [&] { return ir::TensorType::of(t.scalar_type(), t.sizes().vec()).to_string(); };
  SHRINK_CHECK(t.defined(), "input '", v->name, "' is missing");
  SHRINK_CHECK(t.scalar_type() == want.dtype, "input '", v->name, "': expected ",
               want.to_string(), ", got ", got());
  if (!want.has_shape) return;
  bool ok = t.dim() == want.rank();
  for (int64_t d = 0; ok && d < t.dim(); ++d)
    ok = want.dims[d] == ir::kDynamic || want.dims[d] == t.size(d);
  SHRINK_CHECK(ok, "input '", v->name, "': expected shape ", want.to_string(), ", got ", got());
}

std::vector<at::Tensor> Session::run(const std::vector<at::Tensor>& inputs) {
  SHRINK_CHECK(inputs.size() == input_slots_.size(), "graph '", graph_->name, "' takes ",
               input_slots_.size(), " inputs, got ", inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    check_input(i, inputs[i]);
    slots_[input_slots_[i]] = inputs[i];
  }
  std::optional<at::NoGradGuard> no_grad;
  if (!context_.training) no_grad.emplace();

  ops::Tensors args;
  for (size_t k = 0; k < steps_.size(); ++k) {
    const Step& step = steps_[k];
    args.clear();
    for (int s : step.inputs) args.push_back(s >= 0 ? slots_[s] : at::Tensor());
    ops::Tensors results;
    try {
      if (profile_.empty()) {
        results = step.kernel(context_, args);
      } else {
        auto start = std::chrono::steady_clock::now();
        results = step.kernel(context_, args);
        profile_[k].total_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
        ++profile_[k].runs;
      }
    } catch (const std::exception& e) {
      std::string what = e.what();
      what = what.substr(0, what.find('\n'));  // ATen appends a backtrace
      fail(step.node->describe(), ": ", what);
    }
    for (size_t i = 0; i < step.outputs.size(); ++i) {
      if (step.outputs[i] < 0) continue;
      SHRINK_CHECK(i < results.size(), step.node->describe(), ": kernel gave ", results.size(),
                   " outputs, node has ", step.outputs.size());
      slots_[step.outputs[i]] = std::move(results[i]);
    }
    for (int s : step.release) slots_[s].reset();
  }

  std::vector<at::Tensor> outputs;
  for (int s : output_slots_) outputs.push_back(slots_[s]);
  taps_.clear();
  for (int s : tap_slots_) taps_.push_back(slots_[s]);
  for (int s : input_slots_) slots_[s].reset();
  return outputs;
}

const at::Tensor& Session::tap(const std::string& name) const {
  for (size_t i = 0; i < tap_names_.size(); ++i)
    if (tap_names_[i] == name) return taps_.at(i);
  fail("'", name, "' was not requested as a tap");
}

std::vector<at::Tensor> run_once(const ir::Graph& graph, const std::vector<at::Tensor>& inputs) {
  Session session(graph);
  return session.run(inputs);
}

}  // namespace shrink::exec
