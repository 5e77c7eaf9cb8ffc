// The deployment workflow's tools — compare, plan, generate, delta, patch — are registered like the stages
// (pipeline/stage.h): one option table and one run function each, so `--help`, the README and the CLI come from
// the same rows. They are not recipe stages: they read one or two models and transform none (plan writes a
// recipe, delta/patch work on file bytes), so they take their paths from their options and need no
// PipelineContext.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "slmopt/pipeline/options.h"

namespace slmopt::pipeline {

struct ToolInfo {
  std::string name;
  std::string summary;
  std::string footer;
  std::vector<OptionSpec> options;
  std::function<void(const OptionValues& values)> run;
};

// In the order `slmopt --help` lists them.
const std::vector<ToolInfo>& tool_registry();

}  // namespace slmopt::pipeline
