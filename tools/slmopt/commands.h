// The subcommand table. Each subcommand lives in its own cmd_<name>.cpp and exports one CommandSpec.
#pragma once

#include "driver.h"

namespace slmopt::driver {

CommandSpec inspect_command();  // lands with the model loader
CommandSpec eval_command();

// In the order `slmopt --help` lists them.
inline std::vector<CommandSpec> all_commands() { return {}; }

}  // namespace slmopt::driver
