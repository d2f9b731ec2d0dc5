// OUTDIR/report.html of `shrink compress`: one self-contained page (inline SVG and
// CSS, no script, nothing fetched) drawn from report.json alone.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace shrink::pipeline {

std::string render_report_html(const nlohmann::json& report);

}  // namespace shrink::pipeline
