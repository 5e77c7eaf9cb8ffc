// A stage's options as one table: name, type, default, help, and the checks every value must pass. The same
// table builds the CLI11 options of the subcommand (tools/slmopt), validates recipe keys (pipeline/recipe.h) and
// prints the documentation, so `--help`, recipes and the README cannot disagree (LLVM's PassRegistry.def idea).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

namespace slmopt::pipeline {

enum class OptionKind { String, Int, Float, Flag, List };
const char* option_kind_name(OptionKind kind);  // "string", "integer", "number", "boolean", "list of strings"

enum class OptionCheck { None, ExistingFile, ExistingPath, Positive, NonNegative, Range };

// Who sets an option: the user everywhere, or (Cli) only on the command line because a recipe sets it from its
// own structure (model path, output path, report path, stdout format).
enum class OptionScope { Everywhere, Cli };

using OptionValue = std::variant<std::string, int64_t, double, bool, std::vector<std::string>>;

struct OptionSpec {
  std::string name;      // recipe key and long flag without "--": "calib-samples"; positionals: "MODEL"
  std::string flags;     // CLI11 spelling: "--calib-samples", "-o,--output", "MODEL"
  OptionKind kind = OptionKind::String;
  OptionValue default_value;
  std::string help;
  OptionCheck check = OptionCheck::None;
  double min = 0, max = 0;            // Range: [min, max] (CLI11's Range semantics)
  std::vector<std::string> members;   // allowed spellings (empty: any)
  std::string excludes;               // name of an option that may not be given together with this one
  bool required = false;
  std::string required_unless;        // required unless this flag option is set ("dry-run"); checked before work
  bool is_path = false;               // recipes resolve it relative to the recipe's folder
  OptionScope scope = OptionScope::Everywhere;
  bool positional() const { return !flags.empty() && flags[0] != '-'; }

  // Builders, so a stage's table reads as one line per option.
  OptionSpec with_check(OptionCheck c, double lo = 0, double hi = 0) const;
  OptionSpec with_members(std::vector<std::string> allowed) const;
  OptionSpec with_flags(std::string cli_flags) const;
  OptionSpec excluding(std::string other) const;
  OptionSpec as_path() const;
  OptionSpec cli_only() const;
  OptionSpec mandatory() const;
  OptionSpec mandatory_unless(std::string flag) const;
};

OptionSpec string_option(std::string name, std::string default_value, std::string help);
OptionSpec int_option(std::string name, int64_t default_value, std::string help);
OptionSpec float_option(std::string name, double default_value, std::string help);
OptionSpec flag_option(std::string name, std::string help);
OptionSpec list_option(std::string name, std::string help);
// A required positional argument (MODEL, TEACHER, RECIPE); set by the recipe's structure, not its keys.
OptionSpec positional_option(std::string name, std::string help);

// Values of one stage invocation, created from the table's defaults. Reading an option the table does not
// declare, or with the wrong type, is a programmer error (Error(Internal)).
class OptionValues {
 public:
  OptionValues() = default;
  explicit OptionValues(const std::vector<OptionSpec>& specs);

  const std::string& str(const std::string& name) const;
  int64_t i64(const std::string& name) const;
  double f64(const std::string& name) const;
  bool flag(const std::string& name) const;
  const std::vector<std::string>& list(const std::string& name) const;

  void set(const std::string& name, OptionValue value);  // marks the option as given
  bool given(const std::string& name) const { return given_.count(name) > 0; }
  void mark_given(const std::string& name) { given_.insert(name); }
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  OptionValue& slot(const std::string& name);  // for binding (CLI11 writes into it)
  const OptionValue& value(const std::string& name) const { return get(name); }

 private:
  const OptionValue& get(const std::string& name) const;
  std::map<std::string, OptionValue> values_;
  std::set<std::string> given_;
};

// Applies the table's check to one value (recipes; the CLI uses CLI11's validators built from the same fields).
// Throws Error(Usage) beginning with `where` (e.g. "recipe.yaml:12: key 'ffn-ratio'").
void check_option_value(const OptionSpec& spec, const OptionValue& value, const std::string& where);

std::string option_value_to_string(const OptionValue& value);

}  // namespace slmopt::pipeline
