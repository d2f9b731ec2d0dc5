#include "shrink/report/latency.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <vector>

#include "shrink/core/error.h"
#include "shrink/exec/session.h"

namespace shrink::report {

namespace {

std::map<std::string, int64_t>& dim_sizes() {
  static std::map<std::string, int64_t> sizes;
  return sizes;
}

Latency time_runs(const ir::Graph& g, const std::vector<at::Tensor>& inputs, int runs, int warmup, bool profile) {
  SHRINK_CHECK(runs >= 1, "latency needs at least one timed run, got ", runs);
  Latency r;
  r.batch = inputs.empty() || inputs[0].dim() == 0 ? 1 : inputs[0].size(0);
  r.runs = runs;
  exec::Session session(g);
  for (int i = 0; i < warmup; ++i) session.run(inputs);
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    session.run(inputs);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  r.median_ms = ms[ms.size() / 2];
  r.p90_ms = ms[std::min(ms.size() - 1, ms.size() * 9 / 10)];
  r.min_ms = ms.front();
  if (profile) {
    exec::SessionOptions so;
    so.profile = true;
    exec::Session profiled(g, so);
    for (int i = 0; i < runs; ++i) profiled.run(inputs);
    for (const exec::NodeProfile& p : profiled.profile())
      r.profile.push_back({p.node->name, p.node->op_type, p.runs ? p.total_ms / p.runs : 0});
  }
  return r;
}

}  // namespace

void set_dim_sizes(const std::map<std::string, int64_t>& sizes) { dim_sizes() = sizes; }

std::vector<at::Tensor> sample_inputs(const ir::Graph& g, int64_t batch) {
  // The batch's name: the first input's leading dimension, when it is symbolic.
  std::string batch_name;
  if (!g.inputs().empty()) {
    const ir::TensorType& t = g.inputs()[0]->type;
    if (t.has_shape && !t.dims.empty() && t.dims[0] < 0 && !t.dim_names.empty()) batch_name = t.dim_names[0];
  }
  std::vector<at::Tensor> inputs;
  at::manual_seed(0);
  for (const ir::Value* in : g.inputs()) {
    SHRINK_CHECK(in->type.has_shape, "input '", in->name, "' has no shape to benchmark with");
    std::vector<int64_t> dims = in->type.dims;
    for (size_t i = 0; i < dims.size(); ++i) {
      if (dims[i] >= 0) continue;
      std::string name = i < in->type.dim_names.size() ? in->type.dim_names[i] : "";
      auto given = name.empty() ? dim_sizes().end() : dim_sizes().find(name);
      if (given != dim_sizes().end()) {
        dims[i] = given->second;
      } else if (i == 0 || (!name.empty() && name == batch_name)) {
        dims[i] = batch;
      } else {
        SHRINK_CHECK(!name.empty(), "input '", in->name, "': dimension ", i, " of ", in->type.to_string(),
                     " is symbolic and unnamed, so its size for timing cannot be given");
        fail("input '", in->name, "': dimension ", i, " ('", name, "') of ", in->type.to_string(),
             " is symbolic: give its size for timing with `shrink --dim ", name, "=SIZE`");
      }
    }
    at::TensorOptions o = at::TensorOptions().dtype(in->type.dtype);
    inputs.push_back(at::isFloatingType(in->type.dtype) ? at::randn(dims, o) : at::zeros(dims, o));
  }
  return inputs;
}

Latency measure_latency(const ir::Graph& g, int64_t batch, int runs, int warmup, bool profile) {
  return time_runs(g, sample_inputs(g, batch), runs, warmup, profile);
}

Latency measure_nodes_latency(const ir::Graph& g, const std::vector<std::string>& nodes, int64_t batch, int runs,
                              int warmup) {
  ir::Graph sub;
  sub.opset = g.opset;
  std::map<const ir::Value*, ir::Value*> mapped;
  std::set<const ir::Value*> consumed;
  std::vector<ir::Value*> produced;
  std::vector<std::string> outside;  // what the nodes read from the rest of the graph
  for (const std::string& name : nodes) {
    const ir::Node* n = g.find_node(name);
    SHRINK_CHECK(n, "no node named '", name, "' to time");
    std::vector<ir::Value*> inputs;
    for (ir::Value* v : n->inputs()) {
      if (!v) {
        inputs.push_back(nullptr);
        continue;
      }
      consumed.insert(v);
      auto it = mapped.find(v);
      if (it == mapped.end()) {
        const ir::Initializer* init = g.initializer(v->name);
        ir::Value* copy = init ? sub.add_initializer(v->name, init->tensor, init->kind) : sub.add_input(v->name, v->type);
        if (!init) outside.push_back(v->name);
        it = mapped.emplace(v, copy).first;
      }
      inputs.push_back(it->second);
    }
    std::vector<std::string> outs;
    for (const ir::Value* v : n->outputs()) outs.push_back(v ? v->name : "");
    ir::Node* copy = sub.add_node(n->op_type, inputs, outs, n->attrs, n->name);
    copy->domain = n->domain;
    for (size_t i = 0; i < n->outputs().size(); ++i) {
      if (!n->output(i)) continue;
      mapped[n->output(i)] = copy->output(i);
      produced.push_back(n->output(i));
    }
  }
  for (const ir::Value* v : produced)
    if (!consumed.count(v)) sub.add_output(mapped.at(v));
  // Inputs of the recorded shapes when only their leading (batch) extent is symbolic;
  // otherwise the values the whole graph computes at this batch (symbolic extents
  // elsewhere, e.g. [tokens, N, width] in attention), which costs a run of the model.
  bool batch_first = true;
  for (const ir::Value* in : sub.inputs())
    for (size_t i = 1; i < in->type.dims.size(); ++i) batch_first = batch_first && in->type.dims[i] >= 0;
  if (batch_first) return measure_latency(sub, batch, runs, warmup);
  ir::Graph whole = g.clone();
  size_t first = whole.outputs().size();
  for (const std::string& name : outside) whole.add_output(whole.value(name));
  std::vector<at::Tensor> all = exec::run_once(whole, sample_inputs(g, batch));
  std::vector<at::Tensor> inputs(all.begin() + static_cast<std::ptrdiff_t>(first), all.end());
  return time_runs(sub, inputs, runs, warmup, false);
}

}  // namespace shrink::report
