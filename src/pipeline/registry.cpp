// The one table of stages. Adding a stage: write stage_<name>.cpp with its option table and run function, and
// list it here; the subcommand, its --help, recipes and the README's option list follow from this entry.
#include "stages.h"

#include "slmopt/core/error.h"
#include "slmopt/pipeline/output_check.h"

namespace slmopt::pipeline {

const std::vector<StageInfo>& stage_registry() {
  static const std::vector<StageInfo> stages = {quantize_stage(), compile_stage(), eval_stage(), prune_stage(),
                                                distill_export_stage()};
  return stages;
}

const StageInfo* find_stage(const std::string& name) {
  for (const auto& s : stage_registry())
    if (s.name == name) return &s;
  return nullptr;
}

const OptionSpec* StageInfo::find_option(const std::string& option) const {
  for (const auto& o : options)
    if (o.name == option) return &o;
  return nullptr;
}

void run_single_stage(const StageInfo& stage, const OptionValues& given) {
  // Output paths and the format are settled before the model loads (pipeline/output_check.h).
  OptionValues values = given;
  const OutputPlan plan = prepare_outputs(stage, values);
  // The positional (MODEL or TEACHER) names the input; the context loads it when the stage first asks.
  std::string input;
  for (const auto& o : stage.options)
    if (o.positional()) input = values.str(o.name);
  PipelineContext ctx(input);
  try {
    stage.run(ctx, values);
  } catch (...) {
    remove_created_folders(plan);
    throw;
  }
}

}  // namespace slmopt::pipeline
