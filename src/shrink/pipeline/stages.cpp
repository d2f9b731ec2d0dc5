// make_stage: a recipe entry's kind and settings -> the stage.
#include <algorithm>

#include "shrink/core/error.h"
#include "shrink/pipeline/distill_stage.h"
#include "shrink/pipeline/factorize_stage.h"
#include "shrink/pipeline/prune_stage.h"
#include "shrink/pipeline/quantize_stage.h"
#include "shrink/pipeline/stage.h"

namespace shrink::pipeline {
namespace {

template <class Settings, class StageT>
std::unique_ptr<Stage> build(const nlohmann::json& j, const std::string& where, const Fields::Locate& locate) {
  Settings s;
  Fields f(j, where, locate);
  s.read(f);
  return std::make_unique<StageT>(std::move(s));
}

}  // namespace

std::vector<std::string> stage_kinds() { return {"distill", "prune", "quantize", "codebook", "factorize", "finetune"}; }

std::unique_ptr<Stage> make_stage(const std::string& kind, const nlohmann::json& settings, const std::string& where,
                                  const Fields::Locate& locate) {
  const std::string at = where.empty() ? kind : where;
  if (kind == "prune") return build<PruneSettings, PruneStage>(settings, at, locate);
  if (kind == "quantize") {
    // `mode: codebook` is the weight-sharing stage, as on the command line.
    if (settings.is_object() && settings.value("mode", "") == "codebook") {
      nlohmann::json rest = settings;
      rest.erase("mode");
      return build<CodebookSettings, CodebookStage>(rest, at, locate);
    }
    return build<QuantizeSettings, QuantizeStage>(settings, at, locate);
  }
  if (kind == "codebook") return build<CodebookSettings, CodebookStage>(settings, at, locate);
  if (kind == "factorize") return build<FactorizeSettings, FactorizeStage>(settings, at, locate);
  if (kind == "finetune") return build<FinetuneSettings, FinetuneStage>(settings, at, locate);
  if (kind == "distill") return build<DistillSettings, DistillStage>(settings, at, locate);
  std::string known;
  for (const auto& k : stage_kinds()) known += (known.empty() ? "" : ", ") + k;
  fail(at, ": unknown stage '", kind, "' (known: ", known, ")");
}

}  // namespace shrink::pipeline
