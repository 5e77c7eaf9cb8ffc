// Logging goes to stderr through spdlog; results go to stdout. Verbosity: -1 quiet, 0 info, 1+ debug.
#pragma once

#include <spdlog/spdlog.h>

namespace slmopt {

void setup_logging(int verbosity);
bool stderr_is_terminal();

}  // namespace slmopt
