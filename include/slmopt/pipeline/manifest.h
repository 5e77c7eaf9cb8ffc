// The manifest and combined report of a recipe's run. manifest.json is what an over-the-air updater reads to
// verify and choose an artifact: per artifact its sha256, bytes, format, type mix, metrics and gate results, plus
// the input checkpoint's hash, the recipe's hash and slmopt's version. It holds no timings and no absolute
// paths, so the same recipe and inputs give the same bytes on any machine and thread count. The combined report
// (report.json + report.md) adds what varies (eval tokens/s, wall times) and marks the size/accuracy Pareto front.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "slmopt/pipeline/recipe.h"

namespace slmopt::pipeline {

struct AssembleResult {
  nlohmann::json manifest;
  nlohmann::json report;
  std::vector<std::string> failed;  // "TARGET: gate value > limit" for every failed gate
};

// Reads each target's report (RECIPE_OUTPUT/reports/NAME.json) and artifact, writes manifest.json, report.json
// and report.md into the recipe's output folder. `run_info` (timings, calibration counts) goes into report.json.
AssembleResult assemble_outputs(const Recipe& recipe, const nlohmann::json& run_info);

// Size/accuracy Pareto front over (bytes, mean KL): true where no other target is at least as small and at
// least as accurate and strictly better in one. Targets without a KL are never on the front.
std::vector<bool> pareto_front(const std::vector<double>& bytes, const std::vector<std::optional<double>>& kl);

}  // namespace slmopt::pipeline
