// slmopt: parse global options, dispatch to the subcommand table, and turn library errors into one line on
// stderr plus the error category's exit code.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <CLI/CLI.hpp>

#include "commands.h"
#include "version.h"
#include "slmopt/core/command_line.h"
#include "suggest.h"
#include "slmopt/core/error.h"
#include "slmopt/core/interrupt.h"
#include "slmopt/core/log.h"
#include "slmopt/core/parallel.h"

namespace {

using namespace slmopt;

// The subcommand the user named: the first argument that is neither an option nor a global option's value.
std::string named_subcommand(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--") break;
    if (a == "-t" || a == "--threads") {
      ++i;
      continue;
    }
    if (!a.empty() && a[0] != '-') return a;
  }
  return "";
}

// CLI11 2.1 (Debian 12) has no get_subcommand_no_throw.
CLI::App* find_subcommand(CLI::App& app, const std::string& name) {
  const auto found = app.get_subcommands([&](CLI::App* s) { return s->get_name() == name; });
  return found.empty() ? nullptr : found.front();
}

std::vector<std::string> visible_subcommands(CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](CLI::App* s) { return !s->get_group().empty(); }))
    names.push_back(sub->get_name());
  return names;
}

// "did you mean" for the first --option that neither the subcommand nor the global options know; "" when every
// long option is known (the parse error is then about something else).
std::string unknown_option_message(CLI::App& app, const std::string& subcommand, int argc, char** argv) {
  std::vector<std::string> known;
  std::vector<CLI::App*> scopes = {&app};
  if (CLI::App* sub = subcommand.empty() ? nullptr : find_subcommand(app, subcommand)) scopes.push_back(sub);
  for (CLI::App* scope : scopes)
    for (const CLI::Option* o : scope->get_options())
      for (const auto& name : o->get_lnames()) known.push_back(name);
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") break;
    if (a.rfind("--", 0) != 0) continue;
    a = a.substr(2, a.find('=') == std::string::npos ? std::string::npos : a.find('=') - 2);
    if (std::find(known.begin(), known.end(), a) != known.end()) continue;
    const std::string where = subcommand.empty() ? "slmopt" : "slmopt " + subcommand;
    const std::string guess = driver::closest_match(a, known);
    return guess.empty() ? fmt::format("unknown option --{} for {} (see {} --help)", a, where, where)
                         : fmt::format("unknown option --{} for {}; did you mean --{}?", a, where, guess);
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace slmopt;
  install_interrupt_cleanup();  // before any thread starts: every thread inherits the blocked signals
  // Named, so that usage lines say "slmopt", not the path the binary was started from.
  CLI::App app{"slmopt: turn a small language model into a device-ready artifact (GGUF, ONNX, Hugging Face), "
               "with an honest accuracy report.", "slmopt"};
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

  const std::string subcommand = named_subcommand(argc, argv);
  const auto usage_error = [&](const std::string& message) {
    std::fprintf(stderr, "slmopt: error: %s\n", message.c_str());
    return exit_code(ErrorKind::Usage);
  };
  if (!subcommand.empty() && !find_subcommand(app, subcommand)) {
    const std::string guess = driver::closest_match(subcommand, visible_subcommands(app));
    return usage_error(guess.empty()
                           ? fmt::format("unknown subcommand '{}' (subcommands: {})", subcommand,
                                         fmt::join(visible_subcommands(app), ", "))
                           : fmt::format("unknown subcommand '{}'; did you mean '{}'?", subcommand, guess));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    if (subcommand.empty() && dynamic_cast<const CLI::RequiredError*>(&e))
      return usage_error(fmt::format("name a subcommand: {} (slmopt --help describes them)",
                                     fmt::join(visible_subcommands(app), ", ")));
    if (const std::string typo = unknown_option_message(app, subcommand, argc, argv); !typo.empty())
      return usage_error(typo);
    return usage_error(fmt::format("{} (run {} --help for usage)", e.what(),
                                   subcommand.empty() ? "slmopt" : "slmopt " + subcommand));
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
