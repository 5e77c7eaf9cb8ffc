// The stage constructors the registry (registry.cpp) lists; one file per stage.
#pragma once

#include <optional>
#include <vector>

#include "slmopt/eval/report.h"
#include "slmopt/pipeline/stage.h"
#include "slmopt/quant/rotation.h"

namespace slmopt::pipeline {

StageInfo quantize_stage();
StageInfo prune_stage();
StageInfo distill_export_stage();
StageInfo compile_stage();
StageInfo eval_stage();

// --rotate, --rotate-seed, --rotate-tied (stage_rotation.cpp): the rows every stage that can rotate adds to its
// table, and the options they give (nullopt without --rotate).
std::vector<OptionSpec> rotation_option_specs();
std::optional<RotationOptions> rotation_from_values(const OptionValues& values);
// The report's settings/notes for a rotation.
void add_rotation_notes(AccuracyReport& report, const RotationOptions& options, const RotationReport& rotation);

}  // namespace slmopt::pipeline
