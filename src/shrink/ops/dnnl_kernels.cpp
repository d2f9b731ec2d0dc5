#include "shrink/ops/dnnl_kernels.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <map>
#include <mutex>
#include <vector>

namespace shrink::ops {
namespace {

const dnnl::engine& cpu_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// Primitives by a key of extents and strides. A process that meets more shapes than
// kMaxEntries (a long sweep) starts the cache afresh rather than growing without bound.
template <typename Key, typename Value>
class PrimitiveCache {
 public:
  template <typename Make>
  Value get(const Key& key, Make&& make) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = entries_.find(key);
    if (it != entries_.end()) return it->second;
    if (entries_.size() >= kMaxEntries) entries_.clear();
    return entries_.emplace(key, make()).first->second;
  }

 private:
  static constexpr size_t kMaxEntries = 512;
  std::mutex mutex_;
  std::map<Key, Value> entries_;
};

struct Primitive {
  dnnl::memory::desc a, b, c;  // softmax: a is the data's descriptor
  dnnl::primitive prim;
};

bool plain_float(const at::Tensor& t) {
  return t.scalar_type() == at::kFloat && t.device().is_cpu() && t.layout() == at::kStrided && !t.is_neg() &&
         !t.is_conj();
}

bool needs_grad(const at::Tensor& t) { return at::GradMode::is_enabled() && t.requires_grad(); }

void run(const dnnl::primitive& prim, const std::unordered_map<int, dnnl::memory>& args) {
  dnnl::stream stream(cpu_engine());
  prim.execute(stream, args);
  stream.wait();
}

}  // namespace

at::Tensor softmax_inference(const at::Tensor& x, int64_t axis, bool log) {
  if (needs_grad(x) || !plain_float(x) || x.numel() == 0) return log ? at::log_softmax(x, axis) : at::softmax(x, axis);
  at::Tensor in = x.contiguous();
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= in.size(d);
  for (int64_t d = axis + 1; d < in.dim(); ++d) inner *= in.size(d);
  // The data as [outer, axis, inner], dense and row-major, normalised over dimension 1.
  static PrimitiveCache<std::vector<int64_t>, Primitive> cache;
  Primitive p = cache.get({outer, in.size(axis), inner, log ? 1 : 0}, [&] {
    dnnl::memory::desc md({outer, in.size(axis), inner}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::abc);
    dnnl::primitive prim;
    if (log)
      prim = dnnl::logsoftmax_forward(dnnl::logsoftmax_forward::primitive_desc(
          dnnl::logsoftmax_forward::desc(dnnl::prop_kind::forward_inference, md, 1), cpu_engine()));
    else
      prim = dnnl::softmax_forward(dnnl::softmax_forward::primitive_desc(
          dnnl::softmax_forward::desc(dnnl::prop_kind::forward_inference, md, 1), cpu_engine()));
    return Primitive{md, md, md, prim};
  });
  at::Tensor out = at::empty_like(in, at::MemoryFormat::Contiguous);
  run(p.prim, {{DNNL_ARG_SRC, dnnl::memory(p.a, cpu_engine(), in.data_ptr<float>())},
               {DNNL_ARG_DST, dnnl::memory(p.a, cpu_engine(), out.data_ptr<float>())}});
  return out;
}

at::Tensor batched_matmul_inference(const at::Tensor& a, const at::Tensor& b) {
  if (needs_grad(a) || needs_grad(b) || !plain_float(a) || !plain_float(b) || a.dim() < 2 || b.dim() < 2 ||
      (a.dim() == 2 && b.dim() == 2) || a.size(-1) != b.size(-2))
    return at::matmul(a, b);
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  std::vector<int64_t> batch = at::infer_size(a.sizes().slice(0, a.dim() - 2), b.sizes().slice(0, b.dim() - 2));
  int64_t count = 1;
  for (int64_t d : batch) count *= d;
  std::vector<int64_t> out = batch;
  out.push_back(m);
  out.push_back(n);
  at::Tensor c = at::empty(out, a.options());
  if (count == 0 || m == 0 || n == 0) return c;
  if (k == 0) return c.zero_();
  // Each operand as [count, rows, cols]: a view when its batch dimensions flatten (a copy
  // when they broadcast), each matrix row- or column-major.
  auto stack = [&](const at::Tensor& t, int64_t rows, int64_t cols) {
    std::vector<int64_t> shape = batch;
    shape.push_back(rows);
    shape.push_back(cols);
    at::Tensor s = t.expand(shape).reshape({count, rows, cols});
    const bool row_major = s.stride(2) == 1 && s.stride(1) >= std::max<int64_t>(1, cols);
    const bool column_major = s.stride(1) == 1 && s.stride(2) >= std::max<int64_t>(1, rows);
    const bool batch_ok = count == 1 || s.stride(0) >= rows * cols;
    return (row_major || column_major) && batch_ok ? s : s.contiguous();
  };
  at::Tensor as = stack(a, m, k), bs = stack(b, k, n);
  std::vector<int64_t> key = {count, m, k, n};
  for (const at::Tensor* t : {&as, &bs})
    for (int64_t d = 0; d < 3; ++d) key.push_back(t->size(d) == 1 ? 0 : t->stride(d));
  static PrimitiveCache<std::vector<int64_t>, Primitive> cache;
  auto desc = [](const at::Tensor& t) {
    dnnl::memory::dims strides(t.strides().begin(), t.strides().end());
    if (t.size(0) == 1) strides[0] = t.size(1) * t.size(2);  // a lone matrix's batch stride is arbitrary
    return dnnl::memory::desc(dnnl::memory::dims(t.sizes().begin(), t.sizes().end()), dnnl::memory::data_type::f32,
                              strides);
  };
  Primitive p;
  try {
    p = cache.get(key, [&] {
      dnnl::memory::desc ad = desc(as), bd = desc(bs);
    dnnl::memory::desc cd({count, m, n}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::abc);
      return Primitive{ad, bd, cd,
                       dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(ad, bd, cd), cpu_engine()))};
    });
  } catch (const dnnl::error&) {  // a layout this oneDNN has no kernel for
    return at::matmul(a, b);
  }
  run(p.prim, {{DNNL_ARG_SRC, dnnl::memory(p.a, cpu_engine(), as.data_ptr<float>())},
               {DNNL_ARG_WEIGHTS, dnnl::memory(p.b, cpu_engine(), bs.data_ptr<float>())},
               {DNNL_ARG_DST, dnnl::memory(p.c, cpu_engine(), c.data_ptr<float>())}});
  return c;
}

}  // namespace shrink::ops
