// Shared pieces of the slmopt driver: the subcommand table entry type, global options, and option checks
// (results are printed with pipeline/stage_report.h's print_json and human_bytes). The driver only parses
// options, calls the library and prints; no algorithm lives here.
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace slmopt::driver {

struct GlobalOptions {
  int verbosity = 0;  // -v increments, --quiet sets -1
  int threads = 0;    // 0 = all cores
};

// One row of the subcommand table: name, one-line summary, and a function that adds the subcommand's
// options to `sub` and returns the action to run once parsing succeeded.
struct CommandSpec {
  const char* name;
  const char* summary;
  std::function<std::function<void()>(CLI::App& sub, const GlobalOptions& global)> setup;
};

// Validates an option value that names an existing input path; throws Error(Usage) naming the option.
void require_path(const std::string& option, const std::string& path);

}  // namespace slmopt::driver
