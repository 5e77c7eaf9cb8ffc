// The subcommand table: the pipeline's stages (generated from the stage registry), inspect, run, tokenize and the
// workflow tools (generated from the tool registry).
#pragma once

#include "driver.h"
#include "slmopt/pipeline/stage.h"
#include "slmopt/pipeline/tool.h"
#include "stage_command.h"

namespace slmopt::driver {

CommandSpec inspect_command();
CommandSpec run_command();
CommandSpec tokenize_command();
CommandSpec dev_command();  // hidden developer tools
// A subcommand of the tool registry (compare, plan, generate, delta, patch: tool_command.cpp).
CommandSpec tool_command(const pipeline::ToolInfo& tool);

// In the order `slmopt --help` lists them: the registry's stages with inspect after compile, then run.
inline std::vector<CommandSpec> all_commands() {
  std::vector<CommandSpec> commands;
  for (const auto& stage : pipeline::stage_registry()) {
    commands.push_back(stage_command(stage));
    if (stage.name == "compile") commands.push_back(inspect_command());
  }
  commands.push_back(run_command());
  commands.push_back(tokenize_command());
  for (const auto& tool : pipeline::tool_registry()) commands.push_back(tool_command(tool));
  commands.push_back(dev_command());
  return commands;
}

}  // namespace slmopt::driver
