// The stage registry: every stage (quantize, prune, distill-export, compile, eval) is registered once with its
// option table and its run function. A subcommand is a one-stage pipeline built from the same entry, and a
// recipe (pipeline/recipe.h) is a list of entries; so the stage list, the options and their help come from one
// place. Like LLVM's PreservedAnalyses, a stage says what its run invalidates, so the context drops only the
// shared calibration data that depended on it.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "slmopt/pipeline/context.h"
#include "slmopt/pipeline/options.h"

namespace slmopt::pipeline {

struct StageInfo {
  std::string name;     // "quantize"
  std::string summary;  // one line for `slmopt --help`
  std::string footer;   // the subcommand's --help footer
  std::vector<OptionSpec> options;
  Invalidates invalidates = Invalidates::Nothing;  // what a run leaves stale in the context (the model's weights)
  // Runs the stage on ctx.input(); a stage that transforms the model replaces it with ctx.set_input().
  std::function<void(PipelineContext& ctx, const OptionValues& values)> run;

  const OptionSpec* find_option(const std::string& name) const;
};

// The registry, in the order `slmopt --help` lists the stages.
const std::vector<StageInfo>& stage_registry();
// nullptr when no stage has that name.
const StageInfo* find_stage(const std::string& name);

// One stage as a subcommand: loads its MODEL/TEACHER positional lazily through a fresh context and runs it.
void run_single_stage(const StageInfo& stage, const OptionValues& values);

}  // namespace slmopt::pipeline
