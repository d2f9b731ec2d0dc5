#include "shrink/pipeline/compress.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>

#include "shrink/core/atomic_file.h"
#include "shrink/core/error.h"
#include "shrink/core/hash.h"
#include "shrink/core/parse.h"
#include "shrink/core/threads.h"
#include "shrink/dist/dist.h"
#include "shrink/onnx/encode.h"
#include "shrink/onnx/export.h"
#include "shrink/onnx/external_data.h"
#include "shrink/onnx/import.h"
#include "shrink/passes/pass.h"
#include "shrink/pipeline/ort_latency.h"
#include "shrink/pipeline/prune_stage.h"
#include "shrink/pipeline/report_html.h"
#include "shrink/prune/sensitivity.h"
#include "shrink/report/latency.h"
#include "shrink/report/model_stats.h"
#include "shrink/train/trainer.h"

namespace fs = std::filesystem;

namespace shrink::pipeline {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The settings of a candidate as the subcommand's flags, for the report.
std::string command_of(const Candidate& c, const std::string& parent_file, const std::string& data_flags) {
  if (c.stage == "original") return "";
  std::string cmd = "shrink ";
  nlohmann::json s = c.settings;
  if (c.stage == "codebook") {
    cmd += "quantize " + parent_file + " -o OUT.onnx --mode codebook";
  } else if (c.stage == "distill") {
    cmd += "distill --teacher " + parent_file + " -o OUT.onnx";
  } else if (c.stage == "finetune") {
    cmd += "train --model " + parent_file + " -o OUT.onnx";  // the model as a starting point
  } else {
    cmd += c.stage + " " + parent_file + " -o OUT.onnx";
  }
  for (const auto& [key, v] : s.items()) {
    std::string flag = setting_name(key == "ignore" && c.stage == "prune" ? "ignore" : key, true);
    if (v.is_boolean()) {
      if (v.get<bool>()) cmd += " " + flag;
      else if (key == "per_channel") cmd += " --per-tensor";
      continue;
    }
    std::string value;
    if (v.is_string()) value = v.get<std::string>();
    else if (v.is_array()) {
      for (const auto& x : v) value += (value.empty() ? "" : ",") + (x.is_string() ? x.get<std::string>() : x.dump());
    } else if (v.is_object()) {
      for (const auto& [k, x] : v.items()) value += (value.empty() ? "" : ",") + k + "=" + x.dump();
    } else {
      value = v.dump();
    }
    cmd += " " + flag + " " + value;
  }
  return cmd + data_flags;
}

class Search {
 public:
  Search(const ir::Graph& model, const data::Dataset& train, const data::Dataset& test, const CompressOptions& o)
      : model_(model), test_(test), o_(o), r_(o.recipe), start_(Clock::now()) {
    // A model trained with `shrink train --holdout N` never saw its validation part:
    // score on exactly that part. Otherwise the validation samples were trained on, and
    // a drop measured on them also counts what fine-tuning forgets of them.
    int64_t samples = r_.validation_samples;
    uint64_t seed = r_.seed;
    auto held = model.metadata.find("shrink.holdout");
    if (held != model.metadata.end()) {
      const size_t comma = held->second.find(',');
      SHRINK_CHECK(comma != std::string::npos, "the model's metadata shrink.holdout is not N,SEED: '", held->second, "'");
      samples = parse_int(held->second.substr(0, comma), "metadata shrink.holdout", 1);
      seed = static_cast<uint64_t>(parse_int(held->second.substr(comma + 1), "metadata shrink.holdout seed", 0));
      holdout_ = true;
    }
    std::tie(fit_, val_) = data::split_validation(train, samples, seed);
    cache_ = fs::path(o.outdir) / "cache";
  }

  CompressResult run() {
    prepare_outdir();
    add_root();
    std::vector<int> frontier = {0};
    for (size_t s = 0; s < r_.stages.size() && !stopped(); ++s) frontier = run_stage(r_.stages[s], frontier);
    return finish();
  }

 private:
  void prepare_outdir() {
    std::error_code ec;
    fs::create_directories(cache_, ec);
    SHRINK_CHECK(!ec, o_.outdir, ": cannot create the output directory (", ec.message(), ")");
    SHRINK_CHECK(fs::is_directory(o_.outdir), o_.outdir, ": is not a directory");
    // Data-parallel: rank 0 looks before any rank writes there.
    if (dist::world().rank == 0) {
      const bool previous = fs::exists(fs::path(o_.outdir) / "report.json") || !fs::is_empty(cache_);
      SHRINK_CHECK(!previous || o_.resume, o_.outdir, ": holds a previous compress run (report.json, cache/); give "
                   "--resume to continue it, or another directory");
    }
    dist::barrier();
  }

  std::string path_of(const std::string& id, const char* ext) const { return (cache_ / (id + ext)).string(); }

  void add_root() {
    Hasher h;
    h.text("shrink compress root v1");
    if (o_.storage != onnx_io::Storage::Compact) h.text(std::string("storage ") + onnx_io::storage_name(o_.storage));
    const std::string bytes = onnx_io::export_model_bytes(model_);
    h.bytes(bytes.data(), bytes.size());
    data::fingerprint(h, fit_);
    data::fingerprint(h, val_);
    if (val_.labeled()) {
      at::Tensor l = val_.labels.contiguous();
      h.bytes(l.data_ptr(), l.numel() * l.element_size());
      at::Tensor f = fit_.labels.contiguous();
      h.bytes(f.data_ptr(), f.numel() * f.element_size());
    }
    Candidate root;
    root.id = h.hex();
    root.stage = "original";
    root.file = path_of(root.id, ".onnx");
    if (!load_cached(root)) {
      onnx_io::export_model(model_, root.file, onnx_io::stored_as(o_.storage));
      root.metrics = measure(root.file, model_, nullptr);
      store(root);
    }
    root.in_budget = true;
    candidates_.push_back(root);
    reference_ = onnx_io::import_model(root.file);
    say(root);
  }

  bool load_cached(Candidate& c) {
    const std::string meta = path_of(c.id, ".json");
    if (!fs::exists(meta) || !fs::exists(c.file)) return false;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_file(meta));
    } catch (const std::exception&) {
      return false;  // a cache entry that cannot be read is made again
    }
    c.report = j.value("report", nlohmann::json());
    c.metrics = j.value("metrics", nlohmann::json());
    c.seconds = j.value("seconds", 0.0);
    c.cached = true;
    return c.metrics.is_object();
  }

  void store(const Candidate& c) {
    nlohmann::json j = {{"id", c.id}, {"parent", c.parent}, {"stage", c.stage}, {"settings", c.settings},
                        {"report", c.report}, {"metrics", c.metrics}, {"seconds", c.seconds}};
    write_file_atomically(path_of(c.id, ".json"), j.dump(1));
  }

  // Figures of a stored candidate, as deployed: the file read back, inference passes.
  nlohmann::json measure(const std::string& file, const ir::Graph& g, const Candidate* parent) {
    ir::Graph deployed = onnx_io::import_model(file);
    passes::make_pipeline("inference").run(deployed);
    report::ModelStats st = report::model_stats(g);
    nlohmann::json m = {{"bytes", onnx_io::model_bytes_on_disk(file)}, {"parameters", st.parameters},
                        {"nonzeros", st.nonzeros}, {"macs", st.macs}};
    if (val_.labeled()) {
      m["accuracy"] = train::evaluate(deployed, val_).accuracy;
      m["by"] = "accuracy";
    } else {
      m["accuracy"] = parent ? train::compare(deployed, reference_, val_).agreement : 1.0;
      m["by"] = "agreement";
    }
    m["latency_ms"] = from_rank0([&] { return report::measure_latency(deployed, r_.budget.latency_batch, 50, 5).median_ms; });
    if (r_.budget.latency_in == "onnxruntime") {
      SHRINK_CHECK(!o_.ort_script.empty(), "latency_in: onnxruntime, but ONNX Runtime was not found (", ort_missing_reason(), ")");
      m["ort_latency_ms"] = from_rank0([&] { return ort_latency(o_.ort_script, file, r_.budget.latency_batch).median_ms; });
    }
    return m;
  }

  // Data-parallel (every rank runs the same search, its fine-tuning stages sharded):
  // what depends on the clock is measured by rank 0 alone, on a machine the other ranks
  // leave quiet meanwhile, and broadcast, so every rank takes the same decisions.
  static double from_rank0(const std::function<double()>& measure) {
    if (!dist::world().active()) return measure();
    at::Tensor v = at::zeros({1}, at::kDouble);
    if (dist::world().rank == 0) v.fill_(measure());
    dist::broadcast({v});
    return v.item<double>();
  }

  double objective(const Candidate& c) const {
    if (r_.target == "size") return c.metrics["bytes"].get<double>();
    if (r_.target == "macs") return c.metrics["macs"].get<double>();
    return c.metrics[r_.budget.latency_in == "onnxruntime" ? "ort_latency_ms" : "latency_ms"].get<double>();
  }

  double drop(const Candidate& c) const {
    const double base = candidates_[0].metrics["accuracy"], acc = c.metrics["accuracy"];
    return r_.budget.relative ? (base - acc) / std::max(base, 1e-12) * 100 : (base - acc) * 100;
  }

  bool within(const Candidate& c) const { return drop(c) <= r_.budget.max_drop + 1e-9; }

  bool stopped() {
    if (!stop_reason_.empty()) return true;
    if (r_.minutes > 0 && from_rank0([&] { return seconds_since(start_) > r_.minutes * 60 ? 1.0 : 0.0; }) > 0)
      stop_reason_ = "time limit reached (" + std::to_string(r_.minutes) + " minutes): the search stopped there";
    if (r_.trials > 0 && trials_ >= r_.trials)
      stop_reason_ = "trial limit reached (" + std::to_string(r_.trials) + " candidates made)";
    return !stop_reason_.empty();
  }

  void say(const Candidate& c) {
    if (!o_.progress) return;
    const auto& m = c.metrics;
    std::fprintf(stderr, "compress: #%zu %-9s %8.2f%% (%+.2f) %10lld B %8.3f ms%s%s\n", candidates_.size() - 1,
                 c.stage.c_str(), 100 * m["accuracy"].get<double>(), c.stage == "original" ? 0.0 : -drop(c),
                 m["bytes"].get<long long>(), m["latency_ms"].get<double>(), c.cached ? " (cached)" : "",
                 c.stage == "original" ? "" : (c.in_budget ? "" : " over budget"));
  }

  // One child of `parent`: from the cache, or the stage run on the parent's file.
  int make_child(int parent, const StageSpec& spec, const nlohmann::json& settings, const nlohmann::json& extra) {
    Candidate c;
    c.parent = candidates_[parent].id;
    std::unique_ptr<Stage> stage = make_stage(spec.kind, settings, spec.where, spec.locate());
    c.stage = stage->name();
    c.settings = stage->settings();
    Hasher h;
    h.text(c.parent);
    h.text(c.stage);
    h.text(c.settings.dump());
    c.id = h.hex();
    c.file = path_of(c.id, ".onnx");
    if (!load_cached(c)) {
      ++trials_;
      const auto t0 = Clock::now();
      // A stage that fails on one candidate fails that candidate, not the search: it is
      // reported (report.json's "failed", a note) and not cached, so --resume tries again.
      try {
        ir::Graph g = onnx_io::import_model(candidates_[parent].file);
        c.report = stage->apply(g, {&fit_, &val_, o_.progress});
        onnx_io::export_model(g, c.file, onnx_io::stored_as(o_.storage));
        c.metrics = measure(c.file, g, &candidates_[parent]);
      } catch (const std::exception& e) {
        std::error_code ec;
        fs::remove(c.file, ec);
        failed_.push_back({{"parent", parent}, {"stage", c.stage}, {"settings", c.settings}, {"error", e.what()}});
        notes_.push_back(spec.where + " on candidate " + std::to_string(parent) + " failed: " + e.what());
        if (o_.progress) std::fprintf(stderr, "compress: %s on #%d failed: %s\n", c.stage.c_str(), parent, e.what());
        return -1;
      }
      c.seconds = seconds_since(t0);
      store(c);
    }
    for (const auto& [k, v] : extra.items()) c.metrics[k] = v;
    c.metrics["drop"] = drop(c);
    c.in_budget = within(c);
    candidates_.push_back(std::move(c));
    say(candidates_.back());
    return static_cast<int>(candidates_.size()) - 1;
  }

  // round_to: auto. Channel counts off a runtime's blocks can make a pruned model slower
  // than the original (ONNX Runtime ran ResNet-20 with 13/26/51 channels 1.46x slower),
  // and which multiple pays depends on the network and the runtime. So each multiple is
  // timed where the search times (shrink or ONNX Runtime): `parent` pruned once, without
  // fine-tuning, to every level of the chain; each level runs with the multiple that timed
  // fastest at it (a chain may mix them: ResNet-20 in ORT is fastest at multiples of 8 up
  // to 60% and unrounded at 70-80%). Cached by (parent, settings), so --resume picks the same.
  std::vector<int64_t> pick_round_to(int parent, const StageSpec& spec, const std::vector<nlohmann::json>& levels) {
    Hasher h;
    h.text("round_to probe v3");
    h.text(candidates_[parent].id);
    for (const auto& l : levels) h.text(l.dump());
    const std::string file = path_of(h.hex(), ".probe.json");
    if (fs::exists(file)) {
      try {
        nlohmann::json j = nlohmann::json::parse(read_file(file));
        std::vector<int64_t> picks = j.at("round_to").get<std::vector<int64_t>>();
        if (picks.size() == levels.size()) {
          probes_.push_back(j);
          return picks;
        }
      } catch (const std::exception&) {
        // measured again below
      }
    }
    nlohmann::json j = {{"parent", parent}, {"stage", spec.where}, {"levels", nlohmann::json::array()}};
    for (const auto& l : levels) j["levels"].push_back(l.value("amount", 0.5));
    const std::vector<int64_t> multiples = {1, 8, 16};
    std::vector<int64_t> picks;
    for (size_t li = 0; li < levels.size(); ++li) {
      std::vector<std::string> files;
      for (int64_t r : multiples) {
        nlohmann::json s = levels[li];
        s["round_to"] = r;
        s["finetune"] = 0;
        ir::Graph g = onnx_io::import_model(candidates_[parent].file);
        make_stage(spec.kind, s, spec.where, spec.locate())->apply(g, {&fit_, &val_, false});
        files.push_back(path_of(h.hex() + "-" + std::to_string(r), ".onnx"));
        onnx_io::export_model(g, files.back(), onnx_io::stored_as(o_.storage));
      }
      // Interleaved, twice, in rotated order (a shared machine's load drifts); the lower
      // median of the two counts.
      std::vector<double> ms(multiples.size(), std::numeric_limits<double>::infinity());
      for (size_t rep = 0; rep < 2; ++rep)
        for (size_t k = 0; k < multiples.size(); ++k) {
          const size_t m = (k + li + rep) % multiples.size();
          ms[m] = std::min(ms[m], search_latency(files[m]));
        }
      for (size_t m = 0; m < multiples.size(); ++m) {
        j["latency_ms"][std::to_string(multiples[m])].push_back(ms[m]);
        std::error_code ec;
        fs::remove(files[m], ec);
      }
      picks.push_back(multiples[static_cast<size_t>(std::min_element(ms.begin(), ms.end()) - ms.begin())]);
    }
    j["round_to"] = picks;
    write_file_atomically(file, j.dump(1));
    probes_.push_back(j);
    std::string chose;
    for (size_t i = 0; i < picks.size(); ++i)
      chose += (i ? ", " : "") + std::to_string(picks[i]) + " at " + std::to_string(static_cast<int>(std::lround(100 * levels[i].value("amount", 0.5)))) + "%";
    notes_.push_back(spec.where + ": round_to auto chose " + chose + " (each multiple timed on the parent pruned once to the "
                     "level; report.json's \"probes\")");
    return picks;
  }

  // Output channels of the layers structured pruning may shrink (Conv and Gemm/MatMul
  // with a stored weight, not producing a graph output), summed.
  static int64_t output_channels(const std::string& file) {
    ir::Graph g = onnx_io::import_model(file);
    int64_t n = 0;
    for (const auto& node : g.nodes()) {
      const std::string& op = node->op_type;
      if ((op != "Conv" && op != "Gemm" && op != "MatMul") || node->inputs().size() < 2 || !node->input(1)) continue;
      if (g.is_graph_output(node->output(0))) continue;
      const ir::Initializer* w = g.initializer(node->input(1)->name);
      if (!w || w->tensor.dim() < 2) continue;
      const bool rows = op == "Conv" || (op == "Gemm" && node->attrs.get_int("transB", 0) != 0);
      n += rows ? w->tensor.size(0) : w->tensor.size(1);
    }
    return n;
  }

  // The latency the search goes by, of a model file (and its graph).
  double search_latency(const std::string& file) {
    return from_rank0([&] { return measured_latency(file); });
  }
  double measured_latency(const std::string& file) {
    if (r_.budget.latency_in == "onnxruntime") {
      SHRINK_CHECK(!o_.ort_script.empty(), "latency_in: onnxruntime, but ONNX Runtime was not found (", ort_missing_reason(), ")");
      return ort_latency(o_.ort_script, file, r_.budget.latency_batch).median_ms;
    }
    ir::Graph deployed = onnx_io::import_model(file);
    passes::make_pipeline("inference").run(deployed);
    return report::measure_latency(deployed, r_.budget.latency_batch, 50, 5).median_ms;
  }

  std::vector<int> run_stage(const StageSpec& spec, const std::vector<int>& frontier) {
    std::vector<nlohmann::json> alts = spec.expand();
    std::vector<int> children;
    const bool chain = spec.kind == "prune";
    for (int parent : frontier) {
      if (stopped()) break;
      if (chain) {
        // Levels of one pruning setting: each from the level below it (iterative
        // pruning), amounts converted to the fraction of what is still alive; a level
        // over budget ends its chain (more pruning would not come back).
        std::map<std::string, std::vector<nlohmann::json>> groups;
        for (const auto& a : alts) {
          nlohmann::json key = a;
          key.erase("amount");
          groups[key.dump()].push_back(a);
        }
        for (auto& [k, levels] : groups) {
          std::sort(levels.begin(), levels.end(),
                    [](const nlohmann::json& a, const nlohmann::json& b) { return a.value("amount", 0.5) < b.value("amount", 0.5); });
          if (levels.front().value("round_to", nlohmann::json(1)) == "auto") {
            const std::vector<int64_t> picks = pick_round_to(parent, spec, levels);
            for (size_t i = 0; i < levels.size(); ++i) levels[i]["round_to"] = picks[i];
          }
          int from = parent;
          double done = 0;
          // Structured levels: what is done is measured (channels rounded up to a multiple
          // remove less than asked), so the next level asks for what is still missing.
          PruneSettings method;
          method.method = levels.front().value("method", method.method);
          const bool channels = method.structured();
          const int64_t start_channels = channels ? output_channels(candidates_[parent].file) : 0;
          for (const auto& level : levels) {
            if (stopped()) break;
            const double total = level.value("amount", 0.5);
            if (total <= done) continue;
            nlohmann::json s = level;
            s["amount"] = std::round((1 - (1 - total) / (1 - done)) * 1e6) / 1e6;
            int child = make_child(from, spec, s, {{"amount_total", total}});
            if (child < 0) break;
            children.push_back(child);
            if (!candidates_[child].in_budget) break;
            from = child;
            done = channels && start_channels > 0
                       ? 1.0 - static_cast<double>(output_channels(candidates_[child].file)) / static_cast<double>(start_channels)
                       : total;
            candidates_[child].metrics["channels_removed"] = done;
          }
        }
      } else {
        for (const auto& a : alts) {
          if (stopped()) break;
          const int child = make_child(parent, spec, a, nlohmann::json::object());
          if (child >= 0) children.push_back(child);
        }
      }
    }
    std::vector<int> kept;
    for (int c : children)
      if (candidates_[c].in_budget) kept.push_back(c);
    if (spec.optional) {
      if (kept.empty()) notes_.push_back(spec.where + ": no candidate within the budget; passed over");
      kept.insert(kept.end(), frontier.begin(), frontier.end());
    } else if (kept.empty()) {
      notes_.push_back(spec.where + ": no candidate within the budget; the next stage starts from the previous one");
      return frontier;
    }
    std::stable_sort(kept.begin(), kept.end(), [&](int a, int b) { return objective(candidates_[a]) < objective(candidates_[b]); });
    if (static_cast<int>(kept.size()) > r_.keep) kept.resize(r_.keep);
    return kept;
  }

  // Pareto set of (accuracy up, key down).
  std::vector<int> pareto(const std::function<double(const Candidate&)>& cost) const {
    std::vector<int> out;
    for (size_t i = 0; i < candidates_.size(); ++i) {
      bool dominated = false;
      const double ai = candidates_[i].metrics["accuracy"], ci = cost(candidates_[i]);
      for (size_t j = 0; j < candidates_.size() && !dominated; ++j) {
        const double aj = candidates_[j].metrics["accuracy"], cj = cost(candidates_[j]);
        dominated = j != i && aj >= ai && cj <= ci && (aj > ai || cj < ci);
      }
      if (!dominated) out.push_back(static_cast<int>(i));
    }
    return out;
  }

  nlohmann::json final_figures(const std::string& file, const ir::Graph& original) {
    ir::Graph deployed = onnx_io::import_model(file);
    passes::make_pipeline("inference").run(deployed);
    const data::Dataset& d = test_.size() > 0 ? test_ : val_;
    nlohmann::json j = {{"split", test_.size() > 0 ? "test" : "validation"}, {"samples", d.size()}};
    if (d.labeled()) {
      train::EvalResult e = train::evaluate(deployed, d);
      j["accuracy"] = e.accuracy;
      j["per_class_accuracy"] = e.per_class_accuracy;
    } else {
      train::Agreement a = train::compare(deployed, original, d);
      j["agreement"] = a.agreement;
    }
    report::Latency l = report::measure_latency(deployed, r_.budget.latency_batch, 30, 3);
    j["latency_ms"] = l.median_ms;
    if (!o_.ort_script.empty()) {
      OrtLatency ol = ort_latency(o_.ort_script, file, r_.budget.latency_batch);
      j["ort_latency_ms"] = ol.median_ms;
      j["ort_create_ms"] = ol.create_ms;
    }
    return j;
  }

  nlohmann::json storage_layers(const std::string& file) const {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& t : onnx_io::stored_tensors(read_file(file), file)) {
      if (t.elements < 2) continue;
      out.push_back({{"name", t.name}, {"form", t.form}, {"elements", t.elements}, {"nonzeros", t.nonzeros},
                     {"bits_per_weight", t.bits_per_weight}, {"bits_per_index", t.bits_per_index}, {"bytes", t.bytes}});
    }
    return out;
  }

  CompressResult finish() {
    CompressResult res;
    if (!stop_reason_.empty()) notes_.push_back(stop_reason_);
    if (!holdout_)
      notes_.push_back("the model was trained on the validation samples (no shrink.holdout in its metadata): drops are measured "
                       "on samples it learnt, which fine-tuning partly forgets, so they overstate the loss; train with "
                       "`shrink train --holdout N` for an unbiased budget");
    int chosen = 0;
    for (size_t i = 1; i < candidates_.size(); ++i) {
      const Candidate& c = candidates_[i];
      if (!c.in_budget) continue;
      const double a = objective(c), b = objective(candidates_[chosen]);
      if (a < b || (a == b && c.metrics["accuracy"] > candidates_[chosen].metrics["accuracy"])) chosen = static_cast<int>(i);
    }
    const Candidate& best = candidates_[chosen];
    bool met = true;
    if (r_.budget.target_bytes > 0 && best.metrics["bytes"].get<int64_t>() > r_.budget.target_bytes) {
      met = false;
      notes_.push_back("target_bytes " + std::to_string(r_.budget.target_bytes) + " not met: the best within the accuracy budget has " +
                       std::to_string(best.metrics["bytes"].get<int64_t>()) + " bytes");
    }
    const std::string lat_key = r_.budget.latency_in == "onnxruntime" ? "ort_latency_ms" : "latency_ms";
    if (r_.budget.target_latency_ms > 0 && best.metrics[lat_key].get<double>() > r_.budget.target_latency_ms) {
      met = false;
      notes_.push_back("target_latency_ms not met: the best within the accuracy budget takes " +
                       std::to_string(best.metrics[lat_key].get<double>()) + " ms");
    }
    if (chosen == 0 && candidates_.size() > 1) {
      met = false;
      notes_.push_back("no compressed candidate stayed within the accuracy budget: model.onnx is the original");
    }
    // OUTDIR/model.onnx, and the Pareto sets in candidates/ (stale files from an earlier
    // run of the same directory removed first).
    ir::Graph chosen_graph = onnx_io::import_model(best.file);
    onnx_io::export_model(chosen_graph, (fs::path(o_.outdir) / "model.onnx").string(), onnx_io::stored_as(o_.storage));
    const fs::path cand_dir = fs::path(o_.outdir) / "candidates";
    std::error_code ec;
    fs::remove_all(cand_dir, ec);
    fs::create_directories(cand_dir);
    std::vector<int> by_bytes = pareto([](const Candidate& c) { return c.metrics["bytes"].get<double>(); });
    std::vector<int> by_latency = pareto([](const Candidate& c) { return c.metrics["latency_ms"].get<double>(); });
    std::vector<int> front = by_bytes;
    for (int i : by_latency)
      if (std::find(front.begin(), front.end(), i) == front.end()) front.push_back(i);
    std::sort(front.begin(), front.end());
    std::map<int, std::string> saved;
    for (int i : front) {
      const Candidate& c = candidates_[i];
      char name[64];
      std::snprintf(name, sizeof name, "%02d-%s.onnx", i, c.stage.c_str());
      fs::copy_file(c.file, cand_dir / name, fs::copy_options::overwrite_existing, ec);
      SHRINK_CHECK(!ec, (cand_dir / name).string(), ": cannot write (", ec.message(), ")");
      saved[i] = std::string("candidates/") + name;
    }

    // The report: every candidate with its lineage, the choice, the final figures.
    nlohmann::json j;
    j["input"] = o_.input_name;
    j["recipe"] = recipe_json(r_);
    j["validation"] = {{"samples", val_.size()}, {"fit_samples", fit_.size()}, {"seed", r_.seed},
                       {"held_out_in_training", holdout_},
                       {"by", val_.labeled() ? "accuracy" : "agreement with the original (no labels)"}};
    std::map<std::string, int> index;
    for (size_t i = 0; i < candidates_.size(); ++i) index[candidates_[i].id] = static_cast<int>(i);
    for (size_t i = 0; i < candidates_.size(); ++i) {
      const Candidate& c = candidates_[i];
      const int parent = c.parent.empty() ? -1 : index.at(c.parent);
      nlohmann::json jc = {{"index", i}, {"id", c.id}, {"parent", parent}, {"stage", c.stage}, {"settings", c.settings},
                           {"metrics", c.metrics}, {"in_budget", c.in_budget}, {"seconds", c.seconds}, {"cached", c.cached},
                           {"report", c.report}};
      jc["pareto_bytes"] = std::find(by_bytes.begin(), by_bytes.end(), static_cast<int>(i)) != by_bytes.end();
      jc["pareto_latency"] = std::find(by_latency.begin(), by_latency.end(), static_cast<int>(i)) != by_latency.end();
      if (saved.count(static_cast<int>(i))) jc["file"] = saved[static_cast<int>(i)];
      const std::string parent_file = parent <= 0 ? o_.input_name : "CANDIDATE_" + std::to_string(parent) + ".onnx";
      jc["command"] = command_of(c, parent_file, o_.reproduce_flags);
      j["candidates"].push_back(jc);
    }
    std::vector<int> lineage;
    for (int i = chosen; i >= 0; i = candidates_[i].parent.empty() ? -1 : index.at(candidates_[i].parent)) lineage.push_back(i);
    std::reverse(lineage.begin(), lineage.end());
    j["chosen"] = chosen;
    j["lineage"] = lineage;
    j["budget_met"] = met;
    j["storage"] = onnx_io::storage_name(o_.storage);
    j["notes"] = notes_;
    j["failed"] = failed_;
    j["probes"] = probes_;
    // Final figures of the original and the chosen model (the test split; never used to choose).
    const std::string out_model = (fs::path(o_.outdir) / "model.onnx").string();
    j["final"]["original"] = final_figures(candidates_[0].file, reference_);
    j["final"]["chosen"] = final_figures(out_model, reference_);
    j["final"]["original"]["bytes"] = candidates_[0].metrics["bytes"];
    j["final"]["chosen"]["bytes"] = onnx_io::model_bytes_on_disk(out_model);
    j["layers"]["original"] = storage_layers(candidates_[0].file);
    j["layers"]["chosen"] = storage_layers(out_model);
    // Per-layer pruning sensitivity of the original on the validation split.
    if (val_.labeled()) {
      prune::SensitivityOptions so;
      so.sparsities = {0.5, 0.7, 0.8, 0.9, 0.95, 0.98};
      so.progress = false;
      data::Dataset small = data::random_subset(val_, 2000, r_.seed);
      prune::SensitivityReport sr = prune::sensitivity(reference_, small, so);
      j["sensitivity"] = {{"dense_accuracy", sr.dense_accuracy}, {"sparsities", sr.sparsities}, {"samples", small.size()}};
      for (const auto& l : sr.layers)
        j["sensitivity"]["layers"].push_back({{"node", l.node}, {"weights", l.weights}, {"accuracy", l.accuracy}});
    }
    j["ort"] = o_.ort_script.empty() ? nlohmann::json(ort_missing_reason()) : nlohmann::json("measured");
    res.seconds = seconds_since(start_);
    j["seconds"] = res.seconds;
    write_file_atomically((fs::path(o_.outdir) / "report.json").string(), j.dump(1));
    write_file_atomically((fs::path(o_.outdir) / "report.html").string(), render_report_html(j));
    res.candidates = candidates_;
    res.chosen = chosen;
    res.budget_met = met;
    res.notes = notes_;
    res.report = std::move(j);
    return res;
  }

  const ir::Graph& model_;
  const data::Dataset& test_;
  const CompressOptions& o_;
  const Recipe& r_;
  Clock::time_point start_;
  data::Dataset fit_, val_;
  fs::path cache_;
  ir::Graph reference_;
  std::vector<Candidate> candidates_;
  std::vector<std::string> notes_;
  nlohmann::json failed_ = nlohmann::json::array();
  nlohmann::json probes_ = nlohmann::json::array();  // round_to auto: each multiple's latencies and the pick  // candidates whose stage threw: parent, stage, settings, error
  std::string stop_reason_;
  int trials_ = 0;
  bool holdout_ = false;
};

}  // namespace

CompressResult compress(const ir::Graph& model, const data::Dataset& train, const data::Dataset& test,
                        const CompressOptions& options) {
  SHRINK_CHECK(!options.outdir.empty(), "compress: no output directory given");
  SHRINK_CHECK(!options.recipe.stages.empty(), "compress: the recipe has no stages");
  return Search(model, train, test, options).run();
}

}  // namespace shrink::pipeline
