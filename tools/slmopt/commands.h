// The subcommand table. Each subcommand lives in its own cmd_<name>.cpp and exports one CommandSpec.
#pragma once

#include "driver.h"

namespace slmopt::driver {

CommandSpec inspect_command();
CommandSpec eval_command();

// In the order `slmopt --help` lists them.
inline std::vector<CommandSpec> all_commands() { return {inspect_command(), eval_command()}; }

}  // namespace slmopt::driver
