// Subcommands generated from the stage registry: each row of a stage's option table becomes a CLI11 option with
// the same name, type, default, help and check, and the action hands the parsed values to the library. The
// driver decides nothing else, so `slmopt STAGE --help` and a recipe's keys come from the same table.
#include "stage_command.h"

#include <memory>

#include "slmopt/core/error.h"

namespace slmopt::driver {
namespace {

void add_check(CLI::Option* option, const pipeline::OptionSpec& spec) {
  switch (spec.check) {
    case pipeline::OptionCheck::None: break;
    case pipeline::OptionCheck::ExistingFile: option->check(CLI::ExistingFile); break;
    case pipeline::OptionCheck::ExistingPath: option->check(CLI::ExistingPath); break;
    case pipeline::OptionCheck::Positive: option->check(CLI::PositiveNumber); break;
    case pipeline::OptionCheck::NonNegative: option->check(CLI::NonNegativeNumber); break;
    case pipeline::OptionCheck::Range:
      if (spec.kind == pipeline::OptionKind::Int)
        option->check(CLI::Range(static_cast<int64_t>(spec.min), static_cast<int64_t>(spec.max)));
      else
        option->check(CLI::Range(spec.min, spec.max));
      break;
  }
  if (!spec.members.empty()) option->check(CLI::IsMember(spec.members));
  if (spec.required) option->required();
}

}  // namespace

void add_table_options(CLI::App& sub, const std::vector<pipeline::OptionSpec>& specs, pipeline::OptionValues& values) {
  for (const auto& spec : specs) {
    pipeline::OptionValue& slot = values.slot(spec.name);
    CLI::Option* option = nullptr;
    switch (spec.kind) {
      case pipeline::OptionKind::String: option = sub.add_option(spec.flags, std::get<std::string>(slot), spec.help); break;
      case pipeline::OptionKind::Int: option = sub.add_option(spec.flags, std::get<int64_t>(slot), spec.help); break;
      case pipeline::OptionKind::Float: option = sub.add_option(spec.flags, std::get<double>(slot), spec.help); break;
      case pipeline::OptionKind::Flag: option = sub.add_flag(spec.flags, std::get<bool>(slot), spec.help); break;
      case pipeline::OptionKind::List:
        option = sub.add_option(spec.flags, std::get<std::vector<std::string>>(slot), spec.help);
        break;
    }
    add_check(option, spec);
  }
  for (const auto& spec : specs) {
    if (spec.excludes.empty()) continue;
    for (const auto& other : specs)
      if (other.name == spec.excludes) sub.get_option(spec.flags)->excludes(sub.get_option(other.flags));
  }
}

CommandSpec stage_command(const pipeline::StageInfo& stage) {
  return {stage.name.c_str(), stage.summary.c_str(),
          [&stage](CLI::App& sub, const GlobalOptions&) -> std::function<void()> {
            auto values = std::make_shared<pipeline::OptionValues>(stage.options);
            add_table_options(sub, stage.options, *values);
            if (!stage.footer.empty()) sub.footer(stage.footer);
            CLI::App* app = &sub;
            return [&stage, values, app] {
              // Which options the user typed (a default is not a choice: --format may then follow -o's name).
              for (const auto& spec : stage.options) {
                // CLI11 finds an option by one of its names: "--output" of "-o,--output", or "MODEL".
                const size_t comma = spec.flags.rfind(',');
                const std::string name = comma == std::string::npos ? spec.flags : spec.flags.substr(comma + 1);
                if (app->get_option(name)->count() > 0) values->mark_given(spec.name);
              }
              pipeline::run_single_stage(stage, *values);
            };
          }};
}

}  // namespace slmopt::driver
