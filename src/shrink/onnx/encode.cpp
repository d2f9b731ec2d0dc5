#include "shrink/onnx/encode.h"

#include <ATen/ATen.h>
#include <onnx/onnx_pb.h>

#include <cstring>
#include <limits>
#include <set>
#include <optional>
#include <vector>

#include "shrink/core/error.h"
#include "shrink/onnx/tensor_proto.h"

namespace shrink::onnx_io {
namespace {

constexpr int64_t kMinEncoded = 32;     // elements: below this the decode nodes cost more
constexpr int64_t kMaxCodebook = 4096;  // distinct values a codebook may hold
constexpr int kMaxGapBits = 24;
// Elements from which a sparse form scatters straight into the shaped tensor (ScatterND
// on [nnz, rank] indices) rather than into a flat one then reshaped: ONNX Runtime folds
// the decode at session creation, and every full-size intermediate it holds costs time
// there (a Reshape of a 400k-element weight copies 1.6 MB once more).
constexpr int64_t kMinShapedScatter = 65536;

size_t varint_bytes(uint64_t v) {
  size_t n = 1;
  for (; v >= 128; v >>= 7) ++n;
  return n;
}
// A length-delimited field of GraphProto (tag numbers below 16): tag, length, payload.
size_t field_bytes(size_t payload) { return 1 + varint_bytes(payload) + payload; }

// Bits that hold the values 0 .. count-1 (at least one).
int bits_for(int64_t count) {
  int b = 1;
  while ((int64_t{1} << b) < count) ++b;
  return b;
}

// A stream is stored as groups of `per` values of `bits` bits, each group in `bytes`
// little-endian bytes (uint8): 8 values of 5 bits in 5 bytes, 4 of 6 bits in 3, so a
// value costs its bits and at most a few bits of padding per group.
struct Packing {
  int64_t bytes = 0, per = 0, groups = 0, total = -1;
};

Packing best_packing(int64_t len, int bits) {
  Packing best;
  // At most 6 bytes a group: ONNX Runtime's int64 ReduceSum is exact only below 2^53
  // (measured: 7-byte groups of 11-bit codes came back off by one, in 43% of groups).
  for (int64_t bytes = 1; bytes <= 6; ++bytes) {
    int64_t per = 8 * bytes / bits;
    if (per < 1) continue;
    int64_t groups = (len + per - 1) / per;
    if (best.total < 0 || groups * bytes < best.total) best = {bytes, per, groups, groups * bytes};
  }
  return best;
}

std::string join_dims(const std::vector<int64_t>& dims) {
  std::string s;
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "x" : "") + std::to_string(dims[i]);
  return s;
}

}  // namespace

bool is_stream_mark(const std::string& doc) {
  return doc.size() >= 2 && doc[0] == '~' && (doc == "~k" || doc == "~v" || doc[1] == 'c' || doc[1] == 'g');
}

// One way of writing a tensor: the initializers and decode nodes it adds, and the
// shared constants (shapes, divisors) it needs that the graph does not hold yet.
struct InitializerWriter::Candidate {
  InitializerWriter* w;
  std::vector<onnx::TensorProto> inits;
  std::vector<onnx::NodeProto> nodes;
  std::map<std::string, onnx::TensorProto> shared;

  size_t bytes() const {
    size_t b = 0;
    for (const auto& t : inits) b += field_bytes(t.ByteSizeLong());
    for (const auto& n : nodes) b += field_bytes(n.ByteSizeLong());
    for (const auto& [name, t] : shared) b += field_bytes(t.ByteSizeLong());
    return b;
  }

  std::string tensor(const at::Tensor& t, const std::string& doc) {
    onnx::TensorProto& p = inits.emplace_back();
    tensor_to_proto(t, p);
    p.set_name(w->fresh());
    p.set_doc_string(doc);
    return p.name();
  }
  // A constant shared by every tensor that needs it, named by its content.
  std::string constant(std::string name, const at::Tensor& t) {
    while (w->taken_(name)) name += "~";
    if (!w->shared_.count(name) && !shared.count(name)) {
      onnx::TensorProto p;
      tensor_to_proto(t, p);
      p.set_name(name);
      shared.emplace(name, std::move(p));
    }
    return name;
  }
  std::string shape(const std::vector<int64_t>& dims) {
    return constant("~S" + join_dims(dims), at::tensor(dims, at::kLong));
  }
  std::string scalar(int64_t v) { return constant("~I" + std::to_string(v), at::scalar_tensor(v, at::kLong)); }

  onnx::NodeProto& node(const char* op, const std::vector<std::string>& in) {
    onnx::NodeProto& n = nodes.emplace_back();
    n.set_op_type(op);
    for (const auto& i : in) n.add_input(i);
    n.add_output(w->fresh());
    return n;
  }
  std::string op(const char* type, const std::vector<std::string>& in) { return node(type, in).output(0); }

  // Non-negative values below 2^bits, bit-packed; returns the int64 [len] value that
  // unpacks them: Cast, then (groups of several bytes) Mul by 256^i and ReduceSum, then
  // (several values a group) Div by 2^(bits j), Mod 2^bits, Reshape and Slice.
  std::string stream(const at::Tensor& values, int bits, char kind) {
    const int64_t len = values.numel();
    const Packing p = best_packing(len, bits);
    at::Tensor padded = at::zeros({p.groups * p.per}, at::kLong);
    padded.narrow(0, 0, len).copy_(values.view(-1));
    std::vector<int64_t> shift(p.per), byte_shift(p.bytes);
    for (int64_t j = 0; j < p.per; ++j) shift[j] = int64_t{1} << (bits * j);
    for (int64_t i = 0; i < p.bytes; ++i) byte_shift[i] = int64_t{1} << (8 * i);
    at::Tensor shifts = at::tensor(shift, at::kLong), byte_shifts = at::tensor(byte_shift, at::kLong);
    at::Tensor group = (padded.view({p.groups, p.per}) * shifts).sum(1, /*keepdim=*/true);  // < 2^48
    at::Tensor bytes = at::floor_divide(group, byte_shifts).remainder(256).to(at::kByte);  // [groups, bytes]
    if (p.bytes == 1 && p.per == 1) bytes = bytes.view({p.groups});
    std::string x = tensor(bytes, std::string("~") + kind + std::to_string(bits));
    onnx::NodeProto& cast = node("Cast", {x});
    auto* a = cast.add_attribute();
    a->set_name("to");
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(onnx::TensorProto::INT64);
    x = cast.output(0);
    if (p.bytes > 1) {
      x = op("Mul", {x, constant("~B" + std::to_string(p.bytes), byte_shifts)});
      onnx::NodeProto& sum = node("ReduceSum", {x, shape({1})});
      if (p.per == 1) {  // one value a group: [groups]
        auto* k = sum.add_attribute();
        k->set_name("keepdims");
        k->set_type(onnx::AttributeProto::INT);
        k->set_i(0);
      }
      x = sum.output(0);
    }
    if (p.per > 1) {
      x = op("Div", {x, constant("~D" + std::to_string(bits) + "x" + std::to_string(p.per), shifts)});
      x = op("Mod", {x, scalar(int64_t{1} << bits)});
      x = op("Reshape", {x, shape({-1})});
      if (p.groups * p.per != len) x = op("Slice", {x, shape({0}), shape({len})});
    }
    return x;
  }

  // The flat decoded value `x` (the output of the last node) becomes `name`, shaped.
  void finish(const std::string& x, const std::string& name, const std::vector<int64_t>& dims) {
    if (dims.size() == 1) {
      nodes.back().set_output(0, name);
      return;
    }
    onnx::NodeProto& r = node("Reshape", {x, shape(dims)});
    r.set_output(0, name);
  }
};

InitializerWriter::InitializerWriter(onnx::GraphProto* graph, std::function<bool(const std::string&)> taken,
                                     Storage storage)
    : graph_(graph), taken_(std::move(taken)), storage_(storage) {}

std::string InitializerWriter::fresh() {
  static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  for (;;) {
    std::string s;
    for (int64_t v = counter_++;; v /= 36) {
      s.insert(s.begin(), digits[v % 36]);
      if (v < 36) break;
    }
    s.insert(s.begin(), '~');
    if (!taken_(s)) return s;
  }
}

void InitializerWriter::add(const std::string& name, const at::Tensor& tensor, bool allow_nodes) {
  const int before = graph_->initializer_size();
  add_in_smallest_form(name, tensor, allow_nodes);
  if (sink_)
    for (int i = before; i < graph_->initializer_size(); ++i) sink_(*graph_->mutable_initializer(i));
}

void InitializerWriter::add_in_smallest_form(const std::string& name, const at::Tensor& tensor, bool allow_nodes) {
  const at::Tensor t = tensor.detach().contiguous().cpu();
  onnx::TensorProto dense;
  tensor_to_proto(t, dense);
  dense.set_name(name);
  const int64_t n = t.numel();
  const at::ScalarType type = t.scalar_type();
  auto write_dense = [&] { *graph_->add_initializer() = std::move(dense); };
  if (storage_ == Storage::Dense || n < 16 || type == at::kBool || at::isComplexType(type)) return write_dense();
  const at::Tensor flat = t.view(-1);
  const at::Tensor positions = flat.ne(0).nonzero().view(-1).contiguous();
  const int64_t nnz = positions.numel();
  // All-zero tensors (a quantized model's zero points) stay dense.
  if (nnz == 0) return write_dense();

  size_t best = field_bytes(dense.ByteSizeLong());
  enum class Form { Dense, Sparse, Encoded } form = Form::Dense;
  // Sparse: taken only where it saves 256 bytes or more over every other form, as ONNX's
  // strict shape inference (checker full_check) types a sparse initializer as
  // sparse_tensor and refuses it as an op input; ONNX Runtime and shrink read it either way.
  onnx::SparseTensorProto sparse;
  size_t sparse_bytes = 0;
  if (nnz * (t.element_size() + 1) < n * t.element_size()) {
    at::Tensor idx = positions;
    for (int64_t d : t.sizes()) sparse.add_dims(d);
    tensor_to_proto(flat.index_select(0, idx), *sparse.mutable_values());
    sparse.mutable_values()->set_name(name);
    onnx::TensorProto* ip = sparse.mutable_indices();
    ip->set_data_type(onnx::TensorProto::INT64);
    ip->add_dims(nnz);
    const int64_t* p = idx.data_ptr<int64_t>();
    ip->mutable_int64_data()->Reserve(static_cast<int>(nnz));
    for (int64_t i = 0; i < nnz; ++i) ip->add_int64_data(p[i]);
    sparse_bytes = field_bytes(sparse.ByteSizeLong());
  }

  std::optional<Candidate> chosen;
  auto consider = [&](Candidate&& c) {
    size_t b = c.bytes();
    if (b < best) best = b, form = Form::Encoded, chosen = std::move(c);
  };
  const std::vector<int64_t> dims = t.sizes().vec();
  if (allow_nodes && storage_ == Storage::Compact && n >= kMinEncoded) {
    // Codebook: the distinct values, when there are few (a sample rules out most
    // trained float tensors at once). Only for finite values: NaN is not equal to itself.
    std::optional<at::Tensor> uniq, inverse;
    bool finite = !at::isFloatingType(type) || at::isfinite(flat).all().item<bool>();
    if (finite) {
      // 16-bit floats are compared as float32 (exact; unique has no Half kernel).
      const bool half = type == at::kHalf || type == at::kBFloat16;
      const at::Tensor keys = half ? flat.to(at::kFloat) : flat;
      at::Tensor sample = keys.narrow(0, 0, std::min<int64_t>(n, 16384));
      if (std::get<0>(at::_unique2(sample, true, false, false)).numel() <= kMaxCodebook) {
        auto [u, inv, counts] = at::_unique2(keys, true, true, false);
        if (u.numel() <= kMaxCodebook) uniq = u.to(type), inverse = inv.view(-1).to(at::kLong);
      }
    }
    if (uniq) {  // codes for every element
      Candidate c{this};
      std::string codes = c.stream(*inverse, bits_for(uniq->numel()), 'c');
      c.op("Gather", {c.tensor(*uniq, "~k"), codes});
      c.finish(c.nodes.back().output(0), name, dims);
      consider(std::move(c));
    }
    if (nnz < n && 4 * nnz <= 3 * n) {
      // Relative positions: gaps between non-zeros; a gap of 2^bits or more takes a
      // filler entry (a zero written at the position the full gap reaches).
      std::vector<int64_t> gaps(nnz);
      const int64_t* pos = positions.data_ptr<int64_t>();
      for (int64_t i = 0, prev = -1; i < nnz; prev = pos[i], ++i) gaps[i] = pos[i] - prev - 1;
      const int code_bits = uniq ? bits_for(uniq->numel()) : 0;
      auto entry_bytes = [&](int64_t entries, bool codes) {
        return codes ? best_packing(entries, code_bits).total : entries * static_cast<int64_t>(t.element_size());
      };
      // Two kinds of filler: Deep Compression's, an entry with a value (zero) at the
      // position a full gap reaches; or an escape, the largest gap value E = 2^bits - 1,
      // which moves E positions and has no value, so fillers cost only their gap bits.
      for (bool codes : {false, true})
        for (bool escape : {false, true}) {
          if (codes && !uniq) continue;
          auto fillers_of = [&](int gb) {  // what one filler skips
            return escape ? (int64_t{1} << gb) - 1 : int64_t{1} << gb;
          };
          int best_bits = 0;
          int64_t best_bytes = std::numeric_limits<int64_t>::max();
          for (int gb = escape ? 2 : 1; gb <= std::min(kMaxGapBits, bits_for(n)); ++gb) {
            const int64_t skip = fillers_of(gb);
            int64_t fillers = 0;
            for (int64_t g : gaps) fillers += g / skip;
            int64_t b = best_packing(nnz + fillers, gb).total + entry_bytes(escape ? nnz : nnz + fillers, codes);
            if (b < best_bytes) best_bytes = b, best_bits = gb;
          }
          const int64_t skip = fillers_of(best_bits), filler_value = (int64_t{1} << best_bits) - 1;
          std::vector<int64_t> entry_gaps, source;  // source: index of the non-zero, -1 a filler
          entry_gaps.reserve(nnz);
          source.reserve(nnz);
          for (int64_t i = 0; i < nnz; ++i) {
            int64_t g = gaps[i];
            for (; g >= skip; g -= skip) entry_gaps.push_back(filler_value), source.push_back(-1);
            entry_gaps.push_back(g), source.push_back(i);
          }
          const int64_t entries = static_cast<int64_t>(entry_gaps.size()), stored = escape ? nnz : entries;
          at::Tensor real = at::tensor(source, at::kLong).ge(0);
          Candidate c{this};
          std::string gap_stream = c.stream(at::tensor(entry_gaps, at::kLong), best_bits, 'g');
          std::string p = c.op("Add", {gap_stream, c.scalar(1)});
          if (escape) p = c.op("Min", {p, c.scalar(filler_value)});
          p = c.op("CumSum", {p, c.scalar(0)});
          p = c.op("Add", {p, c.scalar(-1)});
          std::string values;
          if (codes) {
            at::Tensor code = inverse->index_select(0, positions);
            const int64_t zero_code = uniq->eq(0).nonzero().view(-1)[0].item<int64_t>();
            if (escape) code = at::cat({at::full({1}, zero_code, at::kLong), code});
            if (!escape) {
              code = at::full({entries}, zero_code, at::kLong).index_put_({real}, code);
            }
            std::string code_stream = c.stream(code, code_bits, 'c');
            values = c.op("Gather", {c.tensor(*uniq, "~k"), code_stream});
          } else {
            at::Tensor v = flat.index_select(0, positions);
            if (escape) v = at::cat({at::zeros({1}, t.options()), v});
            if (!escape) v = at::zeros({stored}, t.options()).index_put_({real}, v);
            values = c.tensor(v, "~v");
          }
          if (escape) {
            // An escape lands on a zero position too (it moves at most the gap), so every
            // entry scatters to its own place: the k-th value entry takes value k, the
            // escapes value 0, a zero stored first. (Compress would drop the escapes, but
            // ONNX Runtime does not fold it, its output size depending on the data; its
            // Where has no int8 kernel: integer arithmetic on the indices does it.)
            std::string is_value = c.op("Less", {gap_stream, c.scalar(filler_value)});
            onnx::NodeProto& cast = c.node("Cast", {is_value});
            auto* to = cast.add_attribute();
            to->set_name("to");
            to->set_type(onnx::AttributeProto::INT);
            to->set_i(onnx::TensorProto::INT64);
            // By value: the next node may move `cast` (the nodes are a vector).
            const std::string mask = cast.output(0);
            std::string k = c.op("CumSum", {mask, c.scalar(0)});
            k = c.op("Mul", {k, mask});
            values = c.op("Gather", {values, k});
          }
          const bool shaped = dims.size() > 1 && n >= kMinShapedScatter;
          onnx::NodeProto& zeros = c.node("ConstantOfShape", {c.shape(shaped ? dims : std::vector<int64_t>{n})});
          auto* a = zeros.add_attribute();
          a->set_name("value");
          a->set_type(onnx::AttributeProto::TENSOR);
          tensor_to_proto(at::zeros({1}, t.options()), *a->mutable_t());
          const std::string zero_tensor = zeros.output(0);
          if (shaped) {
            // Flat position -> [nnz, rank] index: (p / strides) % dims.
            std::vector<int64_t> strides(dims.size(), 1);
            for (size_t d = dims.size() - 1; d > 0; --d) strides[d - 1] = strides[d] * dims[d];
            std::string ix = c.op("Reshape", {p, c.shape({-1, 1})});
            ix = c.op("Div", {ix, c.constant("~T" + join_dims(strides), at::tensor(strides, at::kLong))});
            ix = c.op("Mod", {ix, c.shape(dims)});
            c.node("ScatterND", {zero_tensor, ix, values}).set_output(0, name);
          } else {
            std::string s = c.op("ScatterElements", {zero_tensor, p, values});
            c.finish(s, name, dims);
          }
          consider(std::move(c));
        }
    }
  }
  if (sparse_bytes && sparse_bytes + 256 <= best) form = Form::Sparse;
  switch (form) {
    case Form::Dense: return write_dense();
    case Form::Sparse: *graph_->add_sparse_initializer() = std::move(sparse); return;
    case Form::Encoded:
      for (auto& [shared_name, proto] : chosen->shared) {
        shared_.insert(shared_name);
        *graph_->add_initializer() = std::move(proto);
      }
      for (auto& proto : chosen->inits) *graph_->add_initializer() = std::move(proto);
      for (auto& proto : chosen->nodes) *graph_->add_node() = std::move(proto);
      return;
  }
}

std::vector<StoredTensor> stored_tensors(const std::string& model_bytes, const std::string& label) {
  onnx::ModelProto m;
  SHRINK_CHECK(m.ParseFromString(model_bytes), label, ": not a valid ONNX model");
  const onnx::GraphProto& g = m.graph();
  std::map<std::string, const onnx::TensorProto*> inits;
  for (const auto& t : g.initializer()) inits[t.name()] = &t;
  std::map<std::string, const onnx::NodeProto*> producer;
  for (const auto& n : g.node())
    for (const auto& o : n.output()) producer[o] = &n;
  auto numel = [](const auto& dims) {
    int64_t e = 1;
    for (int64_t d : dims) e *= d;
    return e;
  };
  auto bits_of = [](int type) -> int64_t {
    switch (type) {
      case onnx::TensorProto::DOUBLE: case onnx::TensorProto::INT64: return 64;
      case onnx::TensorProto::FLOAT: case onnx::TensorProto::INT32: return 32;
      case onnx::TensorProto::FLOAT16: case onnx::TensorProto::BFLOAT16: case onnx::TensorProto::INT16: return 16;
      case onnx::TensorProto::BOOL: return 8;
      default: return 8;
    }
  };
  std::vector<StoredTensor> out;
  for (const auto& t : g.initializer()) {
    if (t.name().rfind('~', 0) == 0) continue;  // a stream or a decode constant
    StoredTensor s{t.name(), "dense", {t.dims().begin(), t.dims().end()}};
    s.elements = numel(t.dims());
    s.element_bits = s.bits_per_weight = bits_of(t.data_type());
    s.bytes = static_cast<int64_t>(field_bytes(t.ByteSizeLong()));
    try {
      at::Tensor v = tensor_from_proto(t, label + ": initializer '" + t.name() + "'");
      s.nonzeros = v.ne(0).sum().item<int64_t>();
    } catch (const Error&) {
      s.nonzeros = -1;
    }
    out.push_back(s);
  }
  for (const auto& sp : g.sparse_initializer()) {
    StoredTensor s{sp.values().name(), "sparse", {sp.dims().begin(), sp.dims().end()}};
    s.elements = numel(sp.dims());
    s.nonzeros = numel(sp.values().dims());
    s.element_bits = s.bits_per_weight = bits_of(sp.values().data_type());
    s.bits_per_index = s.nonzeros ? 8.0 * static_cast<double>(sp.indices().ByteSizeLong()) / s.nonzeros : 0;
    s.bytes = static_cast<int64_t>(field_bytes(sp.ByteSizeLong()));
    out.push_back(s);
  }
  // A decode chain: the node whose output is not "~..." but reads "~..." values.
  for (const auto& n : g.node()) {
    if (n.output_size() != 1 || n.output(0).rfind('~', 0) == 0) continue;
    bool reads = false;
    for (const auto& in : n.input()) reads = reads || (in.rfind('~', 0) == 0 && (producer.count(in) || inits.count(in)));
    if (!reads || !(n.op_type() == "Reshape" || n.op_type() == "Gather" || n.op_type() == "ScatterElements" ||
                    n.op_type() == "ScatterND"))
      continue;
    StoredTensor s{n.output(0)};
    std::set<std::string> seen;
    std::vector<const onnx::NodeProto*> stack = {&n};
    int64_t code_bits = 0, gap_bits = 0, entries = 0, gap_entries = 0;
    bool values = false, gaps = false;
    const onnx::TensorProto* value_tensor = nullptr;
    while (!stack.empty()) {
      const onnx::NodeProto* node = stack.back();
      stack.pop_back();
      s.bytes += static_cast<int64_t>(field_bytes(node->ByteSizeLong()));
      if (node->op_type() == "ConstantOfShape" && node->attribute_size())
        s.element_bits = bits_of(node->attribute(0).t().data_type());
      // The shape: the last Reshape's target, or the zeros a ScatterND fills.
      const bool shape_node = (node->op_type() == "Reshape" && node == &n) ||
                              (node->op_type() == "ConstantOfShape" && n.op_type() == "ScatterND");
      if (shape_node)
        if (auto it = inits.find(node->input(node->op_type() == "Reshape" ? 1 : 0)); it != inits.end())
          if (it->second->has_raw_data() && it->second->data_type() == onnx::TensorProto::INT64) {
            const std::string& raw = it->second->raw_data();
            s.dims.assign(raw.size() / 8, 0);
            std::memcpy(s.dims.data(), raw.data(), s.dims.size() * 8);
          }
      for (const auto& in : node->input()) {
        if (in.rfind('~', 0) != 0 || !seen.insert(in).second) continue;
        if (auto p = producer.find(in); p != producer.end()) {
          stack.push_back(p->second);
          continue;
        }
        auto it = inits.find(in);
        if (it == inits.end()) continue;
        const onnx::TensorProto& t = *it->second;
        const std::string& doc = t.doc_string();
        if (!is_stream_mark(doc)) continue;  // shared constants are counted once, not per tensor
        s.bytes += static_cast<int64_t>(field_bytes(t.ByteSizeLong()));
        int64_t len = 0;
        if (doc[1] == 'c' || doc[1] == 'g') {
          // Stream lengths: the decode's Slice end, or everything the words hold.
          int bits = std::atoi(doc.c_str() + 2);
          len = numel(t.dims()) * 8 / std::max(1, bits);
          if (doc[1] == 'c') code_bits = bits, entries = std::max(entries, len);
          else gap_bits = bits, gaps = true, gap_entries = len;
        } else if (doc == "~k") {
          s.element_bits = bits_of(t.data_type());
        } else if (doc == "~v") {
          values = true;
          value_tensor = &t;
          s.element_bits = bits_of(t.data_type());
        }
      }
    }
    if (s.dims.empty()) s.dims = {0};
    s.elements = numel(s.dims);
    s.form = gaps ? (values ? "relative+values" : "relative+codes") : "codes";
    s.bits_per_weight = values ? static_cast<double>(s.element_bits) : static_cast<double>(code_bits);
    if (values && value_tensor) s.nonzeros = numel(value_tensor->dims());
    else if (!gaps) s.nonzeros = -1;  // dense codes: zeros are codes too
    else s.nonzeros = std::min<int64_t>(entries, s.elements);
    if (gaps && s.nonzeros > 0) s.bits_per_index = static_cast<double>(gap_bits) * gap_entries / s.nonzeros;
    (void)gap_entries;
    out.push_back(s);
  }
  return out;
}

}  // namespace shrink::onnx_io
