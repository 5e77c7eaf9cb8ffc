// The subcommand table. Each subcommand lives in its own cmd_<name>.cpp and exports one CommandSpec.
#pragma once

#include "driver.h"

namespace slmopt::driver {

CommandSpec inspect_command();
CommandSpec eval_command();
CommandSpec quantize_command();
CommandSpec compile_command();
CommandSpec prune_command();
CommandSpec distill_export_command();
CommandSpec dev_command();  // hidden developer tools

// In the order `slmopt --help` lists them.
inline std::vector<CommandSpec> all_commands() {
  return {quantize_command(), compile_command(), inspect_command(),
          eval_command(),     prune_command(),   distill_export_command(), dev_command()};
}

}  // namespace slmopt::driver
