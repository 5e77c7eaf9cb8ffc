// The tool constructors the tool registry (tool_registry.cpp) lists; one file per tool.
#pragma once

#include "slmopt/pipeline/tool.h"

namespace slmopt::pipeline {

ToolInfo compare_tool();
ToolInfo plan_tool();
ToolInfo generate_tool();
ToolInfo delta_tool();
ToolInfo patch_tool();

}  // namespace slmopt::pipeline
