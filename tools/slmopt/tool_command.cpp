// Subcommands generated from the pipeline's tool registry (pipeline/tool.h), with the same table-to-CLI11
// translation as the stages (stage_command.cpp).
#include "stage_command.h"

#include <memory>

#include "slmopt/pipeline/tool.h"

namespace slmopt::driver {

CommandSpec tool_command(const pipeline::ToolInfo& tool) {
  return {tool.name.c_str(), tool.summary.c_str(),
          [&tool](CLI::App& sub, const GlobalOptions&) -> std::function<void()> {
            auto values = std::make_shared<pipeline::OptionValues>(tool.options);
            add_table_options(sub, tool.options, *values);
            if (!tool.footer.empty()) sub.footer(tool.footer);
            return [&tool, values] { tool.run(*values); };
          }};
}

}  // namespace slmopt::driver
