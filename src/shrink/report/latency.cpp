#include "shrink/report/latency.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "shrink/core/error.h"
#include "shrink/exec/session.h"

namespace shrink::report {

Latency measure_latency(const ir::Graph& g, int64_t batch, int runs, int warmup) {
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
  return r;
}

}  // namespace shrink::report
