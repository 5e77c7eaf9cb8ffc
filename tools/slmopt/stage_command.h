// Subcommands generated from the pipeline's stage registry (pipeline/stage.h).
#pragma once

#include "driver.h"
#include "slmopt/pipeline/stage.h"

namespace slmopt::driver {

// Adds one CLI11 option per table row, bound to `values` (which must outlive parsing).
void add_table_options(CLI::App& sub, const std::vector<pipeline::OptionSpec>& specs, pipeline::OptionValues& values);
// The subcommand of one registered stage; `stage` lives in the registry for the program's lifetime.
CommandSpec stage_command(const pipeline::StageInfo& stage);

}  // namespace slmopt::driver
