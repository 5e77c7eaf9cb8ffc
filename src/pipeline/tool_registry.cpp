// The one table of tools (pipeline/tool.h). Adding a tool: write tool_<name>.cpp with its option table and run
// function, and list it here; the subcommand and its --help follow from this entry.
#include "tools.h"

namespace slmopt::pipeline {

const std::vector<ToolInfo>& tool_registry() {
  static const std::vector<ToolInfo> tools = {compare_tool(), plan_tool(), generate_tool(), delta_tool(), patch_tool()};
  return tools;
}

}  // namespace slmopt::pipeline
