#include "shrink/report/latency.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <vector>

#include "shrink/core/error.h"
#include "shrink/exec/session.h"

namespace shrink::report {

Latency measure_latency(const ir::Graph& g, int64_t batch, int runs, int warmup, bool profile) {
  SHRINK_CHECK(runs >= 1, "latency needs at least one timed run, got ", runs);
  std::vector<at::Tensor> inputs;
  at::manual_seed(0);
  for (const ir::Value* in : g.inputs()) {
    SHRINK_CHECK(in->type.has_shape, "input '", in->name, "' has no shape to benchmark with");
    std::vector<int64_t> dims = in->type.dims;
    for (size_t i = 0; i < dims.size(); ++i) {
      if (dims[i] >= 0) continue;
      SHRINK_CHECK(i == 0, "input '", in->name, "': only the batch dimension may be symbolic, got ", in->type.to_string());
      dims[i] = batch;
    }
    at::TensorOptions o = at::TensorOptions().dtype(in->type.dtype);
    inputs.push_back(at::isFloatingType(in->type.dtype) ? at::randn(dims, o) : at::zeros(dims, o));
  }
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

Latency measure_nodes_latency(const ir::Graph& g, const std::vector<std::string>& nodes, int64_t batch, int runs,
                              int warmup) {
  ir::Graph sub;
  sub.opset = g.opset;
  std::map<const ir::Value*, ir::Value*> mapped;
  std::set<const ir::Value*> consumed;
  std::vector<ir::Value*> produced;
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
  return measure_latency(sub, batch, runs, warmup);
}

}  // namespace shrink::report
