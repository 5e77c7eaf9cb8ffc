#include "slmopt/core/log.h"

#include <cstdlib>
#include <unistd.h>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace slmopt {
namespace {

// https://no-color.org: a set, non-empty NO_COLOR turns colour off whatever the terminal.
bool colour_disabled() {
  const char* env = std::getenv("NO_COLOR");
  return env && *env;
}

}  // namespace

void setup_logging(int verbosity) {
  auto logger = spdlog::stderr_color_mt("slmopt", colour_disabled() ? spdlog::color_mode::never
                                                                    : spdlog::color_mode::automatic);
  logger->set_pattern("%^%l%$: %v");
  spdlog::set_default_logger(logger);
  if (verbosity < 0) spdlog::set_level(spdlog::level::warn);
  else if (verbosity == 0) spdlog::set_level(spdlog::level::info);
  else if (verbosity == 1) spdlog::set_level(spdlog::level::debug);
  else spdlog::set_level(spdlog::level::trace);
}

bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

}  // namespace slmopt
