#include "shrink/pipeline/report_html.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>
#include <vector>

namespace shrink::pipeline {
namespace {

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

std::string bytes_text(double b) {
  if (b >= 1e6) return fmt("%.2f MB", b / 1e6);
  if (b >= 1e4) return fmt("%.1f kB", b / 1e3);
  return fmt("%.0f B", b);
}

const char* kColors[] = {"#555", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

std::string color_of(const std::string& stage) {
  static std::map<std::string, int> index;
  if (stage == "original") return kColors[0];
  if (!index.count(stage)) index[stage] = 1 + static_cast<int>(index.size()) % 7;
  return kColors[index[stage]];
}

struct Point {
  double x, y;
  std::string label, color;
  bool chosen, pareto, original;
};

// A scatter plot with optional log x axis, Pareto staircase, chosen model ringed, and
// a horizontal budget line.
std::string scatter(const std::vector<Point>& pts, const std::string& xlabel, const std::string& ylabel, bool logx,
                    double budget_y, const std::string& title) {
  const double W = 560, H = 340, L = 64, R = 16, T = 30, B = 44;
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  auto tx = [&](double x) { return logx ? std::log10(std::max(x, 1e-12)) : x; };
  for (const auto& p : pts) {
    x0 = std::min(x0, tx(p.x)), x1 = std::max(x1, tx(p.x));
    y0 = std::min(y0, p.y), y1 = std::max(y1, p.y);
  }
  if (budget_y > 0) y0 = std::min(y0, budget_y), y1 = std::max(y1, budget_y);
  if (x1 - x0 < 1e-9) x0 -= 0.5, x1 += 0.5;
  if (y1 - y0 < 1e-9) y0 -= 0.5, y1 += 0.5;
  const double px = (x1 - x0) * 0.06, py = (y1 - y0) * 0.08;
  x0 -= px, x1 += px, y0 -= py, y1 += py;
  if (!logx && x0 < 0) x0 = 0;  // times and sizes are not negative
  auto X = [&](double x) { return L + (tx(x) - x0) / (x1 - x0) * (W - L - R); };
  auto Y = [&](double y) { return T + (1 - (y - y0) / (y1 - y0)) * (H - T - B); };
  std::ostringstream s;
  s << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H << "' class='chart'>";
  s << "<text x='" << W / 2 << "' y='18' text-anchor='middle' class='title'>" << esc(title) << "</text>";
  s << "<rect x='" << L << "' y='" << T << "' width='" << W - L - R << "' height='" << H - T - B << "' fill='none' stroke='#999'/>";
  for (int i = 0; i <= 4; ++i) {  // y ticks
    const double v = y0 + (y1 - y0) * i / 4;
    s << "<text x='" << L - 6 << "' y='" << Y(v) + 4 << "' text-anchor='end' class='tick'>" << fmt("%.2f", v) << "</text>";
    s << "<line x1='" << L << "' x2='" << W - R << "' y1='" << Y(v) << "' y2='" << Y(v) << "' stroke='#eee'/>";
  }
  for (int i = 0; i <= 4; ++i) {  // x ticks
    const double t = x0 + (x1 - x0) * i / 4;
    const double v = logx ? std::pow(10, t) : t;
    const double xx = L + (t - x0) / (x1 - x0) * (W - L - R);
    s << "<text x='" << xx << "' y='" << H - B + 16 << "' text-anchor='middle' class='tick'>"
      << (logx ? bytes_text(v) : fmt("%.3g", v)) << "</text>";
  }
  s << "<text x='" << (L + W - R) / 2 << "' y='" << H - 6 << "' text-anchor='middle'>" << esc(xlabel) << "</text>";
  s << "<text transform='translate(14," << (T + H - B) / 2 << ") rotate(-90)' text-anchor='middle'>" << esc(ylabel) << "</text>";
  if (budget_y > 0)
    s << "<line x1='" << L << "' x2='" << W - R << "' y1='" << Y(budget_y) << "' y2='" << Y(budget_y)
      << "' stroke='#d62728' stroke-dasharray='5,4'/><text x='" << W - R - 4 << "' y='" << Y(budget_y) - 4
      << "' text-anchor='end' class='tick' fill='#d62728'>budget</text>";
  std::vector<Point> front;
  for (const auto& p : pts)
    if (p.pareto) front.push_back(p);
  std::sort(front.begin(), front.end(), [](const Point& a, const Point& b) { return a.x < b.x; });
  if (front.size() > 1) {
    s << "<polyline fill='none' stroke='#888' stroke-width='1.5' points='";
    for (size_t i = 0; i < front.size(); ++i) {
      if (i) s << X(front[i].x) << "," << Y(front[i - 1].y) << " ";
      s << X(front[i].x) << "," << Y(front[i].y) << " ";
    }
    s << "'/>";
  }
  for (const auto& p : pts) {
    s << "<circle cx='" << X(p.x) << "' cy='" << Y(p.y) << "' r='" << (p.original ? 6 : 4.5) << "' fill='" << p.color
      << "' fill-opacity='0.85'><title>" << esc(p.label) << "</title></circle>";
    if (p.chosen)
      s << "<circle cx='" << X(p.x) << "' cy='" << Y(p.y) << "' r='10' fill='none' stroke='#d62728' stroke-width='2.5'/>"
        << "<text x='" << X(p.x) + 12 << "' y='" << Y(p.y) - 8 << "' fill='#d62728' class='tick'>chosen</text>";
    if (p.original) s << "<text x='" << X(p.x) - 10 << "' y='" << Y(p.y) - 9 << "' text-anchor='end' class='tick'>original</text>";
  }
  s << "</svg>";
  return s.str();
}

std::string sensitivity_chart(const nlohmann::json& sens) {
  const double W = 560, L = 56, R = 130, T = 30, B = 44;
  // Tall enough for the legend: one line per layer.
  const double H = std::max(320.0, T + 14.0 * (static_cast<double>(sens["layers"].size()) + 1));
  std::vector<double> xs = sens["sparsities"].get<std::vector<double>>();
  double y0 = 1, y1 = sens["dense_accuracy"].get<double>();
  for (const auto& l : sens["layers"])
    for (double a : l["accuracy"]) y0 = std::min(y0, a), y1 = std::max(y1, a);
  y0 = std::max(0.0, y0 - 0.02), y1 += 0.01;
  auto X = [&](double x) { return L + (x - xs.front()) / std::max(1e-9, xs.back() - xs.front()) * (W - L - R); };
  auto Y = [&](double y) { return T + (1 - (y - y0) / (y1 - y0)) * (H - T - B); };
  std::ostringstream s;
  s << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H << "' class='chart'>";
  s << "<text x='" << L << "' y='18' class='title'>Pruning each layer alone (original model, validation subset)</text>";
  s << "<rect x='" << L << "' y='" << T << "' width='" << W - L - R << "' height='" << H - T - B << "' fill='none' stroke='#999'/>";
  for (int i = 0; i <= 4; ++i) {
    const double v = y0 + (y1 - y0) * i / 4;
    s << "<text x='" << L - 6 << "' y='" << Y(v) + 4 << "' text-anchor='end' class='tick'>" << fmt("%.1f%%", 100 * v) << "</text>";
  }
  for (double x : xs)
    s << "<text x='" << X(x) << "' y='" << H - B + 16 << "' text-anchor='middle' class='tick'>" << fmt("%.0f%%", 100 * x) << "</text>";
  s << "<text x='" << (L + W - R) / 2 << "' y='" << H - 6 << "' text-anchor='middle'>sparsity of the layer</text>";
  int k = 1;
  for (const auto& l : sens["layers"]) {
    const std::string c = kColors[k % 8];
    s << "<polyline fill='none' stroke='" << c << "' stroke-width='2' points='";
    for (size_t i = 0; i < xs.size(); ++i) s << X(xs[i]) << "," << Y(l["accuracy"][i].get<double>()) << " ";
    s << "'/>";
    s << "<text x='" << W - R + 8 << "' y='" << T + 14 * k << "' fill='" << c << "' class='tick'>" << esc(l["node"].get<std::string>())
      << "</text>";
    ++k;
  }
  s << "</svg>";
  return s.str();
}

std::string settings_text(const nlohmann::json& s) {
  std::string out;
  for (const auto& [k, v] : s.items()) out += (out.empty() ? "" : ", ") + k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
  return out;
}

}  // namespace

std::string render_report_html(const nlohmann::json& j) {
  const auto& cands = j["candidates"];
  const int chosen = j["chosen"];
  const auto& recipe = j["recipe"];
  const double base = cands[0]["metrics"]["accuracy"];
  const bool relative = recipe.contains("max_drop_relative");
  const double max_drop = relative ? recipe["max_drop_relative"].get<double>() : recipe["max_drop"].get<double>();
  const double budget_y = 100 * (relative ? base * (1 - max_drop / 100) : base - max_drop / 100);
  std::ostringstream h;
  h << "<!DOCTYPE html><html><head><meta charset='utf-8'><title>shrink compress: " << esc(j["input"].get<std::string>())
    << "</title><style>body{font-family:sans-serif;margin:24px;max-width:1200px;color:#222}"
       "table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}"
       "th{background:#f3f3f3}td.l,th.l{text-align:left}.chart{margin:4px 12px 16px 0;border:1px solid #ddd}"
       ".title{font-weight:bold;font-size:13px}.tick{font-size:11px}text{font-size:12px}.ok{color:#2ca02c}.bad{color:#d62728}"
       "code{font-size:12px;background:#f6f6f6;padding:1px 3px}tr.chosen td{background:#fff3e0}</style></head><body>";
  const auto& fo = j["final"]["original"];
  const auto& fc = j["final"]["chosen"];
  const double ob = fo["bytes"], cb = fc["bytes"];
  h << "<h1>shrink compress: " << esc(j["input"].get<std::string>()) << "</h1>";
  h << "<p>Target <b>" << esc(recipe["target"].get<std::string>()) << "</b> within "
    << (relative ? fmt("%.2f%% of", max_drop) + " the original's" : fmt("%.2f", max_drop) + " points of")
    << " validation " << esc(j["validation"]["by"].get<std::string>()) << " (" << j["validation"]["samples"].get<int64_t>()
    << " samples held out of the training split, seed " << recipe["seed"].get<int64_t>() << "); recipe: "
    << esc(recipe["source"].get<std::string>()) << ". Budget "
    << (j["budget_met"].get<bool>() ? "<b class='ok'>met</b>" : "<b class='bad'>not met</b>") << "; "
    << cands.size() << " candidates in " << fmt("%.0f", j["seconds"].get<double>()) << " s.</p>";
  for (const auto& n : j["notes"]) h << "<p class='bad'>" << esc(n.get<std::string>()) << "</p>";

  h << "<h2>Result</h2><table><tr><th class='l'></th><th>bytes on disk</th><th>" << esc(fo["split"].get<std::string>())
    << " accuracy</th><th>latency in shrink (ms, batch " << recipe["latency_batch"].get<int64_t>() << ")</th><th>latency in ONNX Runtime (ms)</th><th>ORT session creation (ms)</th></tr>";
  auto row = [&](const char* name, const nlohmann::json& f) {
    h << "<tr><td class='l'>" << name << "</td><td>" << f["bytes"].get<int64_t>() << "</td><td>"
      << (f.contains("accuracy") ? fmt("%.2f%%", 100 * f["accuracy"].get<double>()) : fmt("%.2f%% agreement", 100 * f.value("agreement", 0.0)))
      << "</td><td>" << fmt("%.3f", f["latency_ms"].get<double>()) << "</td><td>"
      << (f.contains("ort_latency_ms") ? fmt("%.3f", f["ort_latency_ms"].get<double>()) : std::string("not measured"))
      << "</td><td>" << (f.contains("ort_create_ms") ? fmt("%.1f", f["ort_create_ms"].get<double>()) : "") << "</td></tr>";
  };
  row("original", fo);
  row("chosen", fc);
  h << "<tr><td class='l'>ratio</td><td><b>" << fmt("%.1fx smaller", ob / std::max(1.0, cb)) << "</b></td><td>"
    << (fc.contains("accuracy") ? fmt("%+.2f points", 100 * (fc["accuracy"].get<double>() - fo["accuracy"].get<double>())) : "")
    << "</td><td><b>" << fmt("%.2fx faster", fo["latency_ms"].get<double>() / std::max(1e-9, fc["latency_ms"].get<double>()))
    << "</b></td><td>"
    << (fc.contains("ort_latency_ms") ? fmt("%.2fx faster", fo["ort_latency_ms"].get<double>() / std::max(1e-9, fc["ort_latency_ms"].get<double>())) : "")
    << "</td><td></td></tr></table>";
  if (!fc.contains("ort_latency_ms")) h << "<p>ONNX Runtime not measured: " << esc(j["ort"].get<std::string>()) << "</p>";

  // The latency the search went by: shrink's, or ONNX Runtime's (latency_in onnxruntime).
  const bool in_ort = recipe.value("latency_in", "shrink") == "onnxruntime";
  const std::string lat_key = in_ort ? "ort_latency_ms" : "latency_ms";
  auto lat_of = [&](const nlohmann::json& m) { return m.contains(lat_key) ? m[lat_key].get<double>() : m["latency_ms"].get<double>(); };
  std::vector<Point> by_bytes, by_latency;
  for (const auto& c : cands) {
    const int i = c["index"];
    const auto& m = c["metrics"];
    std::string label = "#" + std::to_string(i) + " " + c["stage"].get<std::string>() + " " + settings_text(c["settings"]) +
                        fmt(" | %.2f%%", 100 * m["accuracy"].get<double>()) + " | " + bytes_text(m["bytes"]) +
                        fmt(" | %.3f ms", lat_of(m));
    const std::string col = color_of(c["stage"]);
    by_bytes.push_back({m["bytes"].get<double>(), 100 * m["accuracy"].get<double>(), label, col, i == chosen,
                        c["pareto_bytes"].get<bool>(), i == 0});
    by_latency.push_back({lat_of(m), 100 * m["accuracy"].get<double>(), label, col, i == chosen,
                          c["pareto_latency"].get<bool>(), i == 0});
  }
  h << "<h2>Candidates: accuracy against size and latency</h2><div>";
  h << scatter(by_bytes, "bytes on disk (log)", "validation accuracy %", true, budget_y, "Accuracy vs bytes (Pareto front in grey)");
  h << scatter(by_latency, in_ort ? "latency in ONNX Runtime, ms" : "latency in shrink, ms", "validation accuracy %", false,
               budget_y, "Accuracy vs latency");
  h << "</div><p>";
  std::map<std::string, std::string> legend;
  for (const auto& c : cands) legend[c["stage"]] = color_of(c["stage"]);
  for (const auto& [stage, col] : legend) h << "<span style='color:" << col << "'>&#9679;</span> " << esc(stage) << " &nbsp; ";
  h << "<span style='color:#d62728'>&#9711;</span> chosen</p>";

  h << "<h2>Lineage of the chosen model</h2><table><tr><th>#</th><th class='l'>stage</th><th class='l'>settings</th>"
       "<th>validation</th><th>non-zeros (of the original's weights)</th><th>bytes</th><th>latency ms" << (in_ort ? " (ORT)" : "") << "</th><th>seconds</th><th class='l'>command that reproduces it</th></tr>";
  for (const auto& i : j["lineage"]) {
    const auto& c = cands[i.get<int>()];
    const auto& m = c["metrics"];
    h << "<tr><td>" << i.get<int>() << "</td><td class='l'>" << esc(c["stage"].get<std::string>()) << "</td><td class='l'>"
      << esc(settings_text(c["settings"])) << "</td><td>" << fmt("%.2f%%", 100 * m["accuracy"].get<double>()) << "</td><td>"
      << m["nonzeros"].get<int64_t>()
      << fmt(" (%.1f%%)", 100.0 * m["nonzeros"].get<double>() / std::max(1.0, cands[0]["metrics"]["parameters"].get<double>()))
      << "</td><td>"
      << m["bytes"].get<int64_t>() << "</td><td>" << fmt("%.3f", lat_of(m)) << "</td><td>"
      << fmt("%.1f", c["seconds"].get<double>()) << "</td><td class='l'><code>" << esc(c["command"].get<std::string>())
      << "</code></td></tr>";
  }
  h << "</table><p>CANDIDATE_N.onnx: candidate N's file (candidates/ holds the Pareto sets; OUTDIR/cache/ID.onnx every one).</p>";

  if (j.contains("sensitivity")) h << "<h2>Sensitivity</h2>" << sensitivity_chart(j["sensitivity"]);

  h << "<h2>Per-layer storage, before and after</h2><table><tr><th class='l'>tensor</th><th>elements</th>"
       "<th>non-zeros before</th><th>non-zeros after</th><th class='l'>stored as</th><th>bits/weight</th><th>bits/index</th>"
       "<th>bytes before</th><th>bytes after</th><th>ratio</th></tr>";
  std::map<std::string, nlohmann::json> after;
  for (const auto& t : j["layers"]["chosen"]) after[t["name"]] = t;
  for (const auto& t : j["layers"]["original"]) {
    const std::string name = t["name"];
    if (!after.count(name)) continue;
    const auto& a = after[name];
    h << "<tr><td class='l'>" << esc(name) << "</td><td>" << t["elements"].get<int64_t>() << "</td><td>"
      << t["nonzeros"].get<int64_t>() << "</td><td>"
      << (a["nonzeros"].get<int64_t>() < 0 ? std::string("&mdash;") : std::to_string(a["nonzeros"].get<int64_t>()))
      << "</td><td class='l'>"
      << esc(a["form"].get<std::string>()) << "</td><td>" << fmt("%.1f", a["bits_per_weight"].get<double>()) << "</td><td>"
      << fmt("%.1f", a["bits_per_index"].get<double>()) << "</td><td>" << t["bytes"].get<int64_t>() << "</td><td>"
      << a["bytes"].get<int64_t>() << "</td><td>" << fmt("%.1fx", t["bytes"].get<double>() / std::max(1.0, a["bytes"].get<double>()))
      << "</td></tr>";
  }
  h << "</table>";

  if (fo.contains("per_class_accuracy") && fc.contains("per_class_accuracy")) {
    h << "<h2>Accuracy per class (" << esc(fo["split"].get<std::string>()) << ")</h2><table><tr><th class='l'></th>";
    const auto& po = fo["per_class_accuracy"];
    for (size_t k = 0; k < po.size(); ++k) h << "<th>" << k << "</th>";
    h << "</tr>";
    for (const auto& [name, f] : {std::pair<const char*, const nlohmann::json*>{"original", &fo}, {"chosen", &fc}}) {
      h << "<tr><td class='l'>" << name << "</td>";
      for (const auto& a : (*f)["per_class_accuracy"]) h << "<td>" << fmt("%.1f", 100 * a.get<double>()) << "</td>";
      h << "</tr>";
    }
    h << "</table>";
  }

  h << "<h2>Every candidate</h2><table><tr><th>#</th><th>parent</th><th class='l'>stage</th><th class='l'>settings</th>"
       "<th>validation</th><th>drop</th><th>bytes</th><th>non-zeros</th><th>MACs</th><th>latency ms"
    << (in_ort ? " (ORT)" : "") << "</th><th>in budget</th></tr>";
  for (const auto& c : cands) {
    const auto& m = c["metrics"];
    h << "<tr" << (c["index"].get<int>() == chosen ? " class='chosen'" : "") << "><td>" << c["index"].get<int>() << "</td><td>"
      << (c["parent"].get<int>() < 0 ? std::string("") : std::to_string(c["parent"].get<int>())) << "</td><td class='l'>"
      << esc(c["stage"].get<std::string>()) << "</td><td class='l'>" << esc(settings_text(c["settings"])) << "</td><td>"
      << fmt("%.2f%%", 100 * m["accuracy"].get<double>()) << "</td><td>" << fmt("%.2f", m.value("drop", 0.0)) << "</td><td>"
      << m["bytes"].get<int64_t>() << "</td><td>" << m["nonzeros"].get<int64_t>() << "</td><td>" << m["macs"].get<int64_t>()
      << "</td><td>" << fmt("%.3f", lat_of(m)) << "</td><td>" << (c["in_budget"].get<bool>() ? "yes" : "no")
      << "</td></tr>";
  }
  h << "</table></body></html>\n";
  return h.str();
}

}  // namespace shrink::pipeline
