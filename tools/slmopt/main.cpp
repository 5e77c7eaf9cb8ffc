// slmopt: parse global options, dispatch to the subcommand table, and turn library errors into one line on
// stderr plus the error category's exit code.
#include <cstdio>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>

#include "commands.h"
#include "version.h"
#include "slmopt/core/command_line.h"
#include "slmopt/core/error.h"
#include "slmopt/core/interrupt.h"
#include "slmopt/core/log.h"
#include "slmopt/core/parallel.h"

int main(int argc, char** argv) {
  using namespace slmopt;
  install_interrupt_cleanup();  // before any thread starts: every thread inherits the blocked signals
  CLI::App app{"slmopt: turn a small language model into a device-ready artifact (GGUF, ONNX, Hugging Face), "
               "with an honest accuracy report."};
  app.set_version_flag("--version", driver::version_text());
  set_command_line(argc, argv);
  app.require_subcommand(1);
  app.fallthrough();

  driver::GlobalOptions global;
  bool quiet = false;
  app.add_flag("-v,--verbose", global.verbosity, "More log output on stderr (repeat for more)");
  app.add_flag("-q,--quiet", quiet, "Only warnings and errors on stderr");
  app.add_option("-t,--threads", global.threads, "Worker threads (default: all cores)")->check(CLI::NonNegativeNumber);

  std::function<void()> action;
  for (const auto& spec : driver::all_commands()) {
    CLI::App* sub = app.add_subcommand(spec.name, spec.summary);
    auto run = std::make_shared<std::function<void()>>();
    *run = spec.setup(*sub, global);
    sub->callback([run, &action] { action = *run; });
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::fprintf(stderr, "slmopt: error: %s\n", e.what());
    std::fprintf(stderr, "Run with --help for usage.\n");
    return exit_code(ErrorKind::Usage);
  }

  try {
    setup_logging(quiet ? -1 : global.verbosity);
    set_thread_count(global.threads);
    if (action) action();
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "slmopt: error: %s\n", e.what());
    return exit_code(e.kind());
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "slmopt: error: out of memory\n");
    return exit_code(ErrorKind::Io);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "slmopt: internal error: %s\n", e.what());
    return exit_code(ErrorKind::Internal);
  }
}
