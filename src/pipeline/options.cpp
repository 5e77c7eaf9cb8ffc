#include "slmopt/pipeline/options.h"

#include <cmath>
#include <filesystem>

#include <fmt/format.h>

#include "slmopt/core/error.h"

namespace slmopt::pipeline {

const char* option_kind_name(OptionKind kind) {
  switch (kind) {
    case OptionKind::String: return "string";
    case OptionKind::Int: return "integer";
    case OptionKind::Float: return "number";
    case OptionKind::Flag: return "boolean";
    case OptionKind::List: return "list of strings";
  }
  return "?";
}

OptionSpec OptionSpec::with_check(OptionCheck c, double lo, double hi) const {
  OptionSpec s = *this;
  s.check = c;
  s.min = lo;
  s.max = hi;
  return s;
}
OptionSpec OptionSpec::with_members(std::vector<std::string> allowed) const {
  OptionSpec s = *this;
  s.members = std::move(allowed);
  return s;
}
OptionSpec OptionSpec::with_flags(std::string cli_flags) const {
  OptionSpec s = *this;
  s.flags = std::move(cli_flags);
  return s;
}
OptionSpec OptionSpec::excluding(std::string other) const {
  OptionSpec s = *this;
  s.excludes = std::move(other);
  return s;
}
OptionSpec OptionSpec::as_path() const {
  OptionSpec s = *this;
  s.is_path = true;
  return s;
}
OptionSpec OptionSpec::cli_only() const {
  OptionSpec s = *this;
  s.scope = OptionScope::Cli;
  return s;
}
OptionSpec OptionSpec::mandatory() const {
  OptionSpec s = *this;
  s.required = true;
  return s;
}

OptionSpec OptionSpec::mandatory_unless(std::string flag) const {
  OptionSpec s = *this;
  s.required_unless = std::move(flag);
  return s;
}

OptionSpec string_option(std::string name, std::string default_value, std::string help) {
  OptionSpec s;
  s.flags = "--" + name;
  s.name = std::move(name);
  s.kind = OptionKind::String;
  s.default_value = std::move(default_value);
  s.help = std::move(help);
  return s;
}
OptionSpec int_option(std::string name, int64_t default_value, std::string help) {
  OptionSpec s = string_option(std::move(name), "", std::move(help));
  s.kind = OptionKind::Int;
  s.default_value = default_value;
  return s;
}
OptionSpec float_option(std::string name, double default_value, std::string help) {
  OptionSpec s = string_option(std::move(name), "", std::move(help));
  s.kind = OptionKind::Float;
  s.default_value = default_value;
  return s;
}
OptionSpec flag_option(std::string name, std::string help) {
  OptionSpec s = string_option(std::move(name), "", std::move(help));
  s.kind = OptionKind::Flag;
  s.default_value = false;
  return s;
}
OptionSpec list_option(std::string name, std::string help) {
  OptionSpec s = string_option(std::move(name), "", std::move(help));
  s.kind = OptionKind::List;
  s.default_value = std::vector<std::string>();
  return s;
}
OptionSpec positional_option(std::string name, std::string help) {
  OptionSpec s = string_option(name, "", std::move(help));
  s.flags = name;
  s.required = true;
  s.is_path = true;
  s.scope = OptionScope::Cli;
  return s;
}

OptionValues::OptionValues(const std::vector<OptionSpec>& specs) {
  for (const auto& s : specs) values_[s.name] = s.default_value;
}

const OptionValue& OptionValues::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw_error(ErrorKind::Internal, "stage option '{}' is not in the option table", name);
  return it->second;
}

template <class T>
static const T& typed(const OptionValue& v, const std::string& name) {
  if (const T* p = std::get_if<T>(&v)) return *p;
  throw_error(ErrorKind::Internal, "stage option '{}' read with the wrong type", name);
}

const std::string& OptionValues::str(const std::string& name) const { return typed<std::string>(get(name), name); }
int64_t OptionValues::i64(const std::string& name) const { return typed<int64_t>(get(name), name); }
double OptionValues::f64(const std::string& name) const { return typed<double>(get(name), name); }
bool OptionValues::flag(const std::string& name) const { return typed<bool>(get(name), name); }
const std::vector<std::string>& OptionValues::list(const std::string& name) const {
  return typed<std::vector<std::string>>(get(name), name);
}

void OptionValues::set(const std::string& name, OptionValue value) {
  const OptionValue& old = get(name);
  if (old.index() != value.index())
    throw_error(ErrorKind::Internal, "stage option '{}' set with the wrong type", name);
  values_[name] = std::move(value);
  given_.insert(name);
}

OptionValue& OptionValues::slot(const std::string& name) {
  auto it = values_.find(name);
  if (it == values_.end()) throw_error(ErrorKind::Internal, "stage option '{}' is not in the option table", name);
  return it->second;
}

std::string option_value_to_string(const OptionValue& value) {
  struct Visitor {
    std::string operator()(const std::string& s) const { return s; }
    std::string operator()(int64_t v) const { return std::to_string(v); }
    std::string operator()(double v) const { return fmt::format("{:g}", v); }
    std::string operator()(bool v) const { return v ? "true" : "false"; }
    std::string operator()(const std::vector<std::string>& v) const { return fmt::format("{}", fmt::join(v, ",")); }
  };
  return std::visit(Visitor{}, value);
}

void check_option_value(const OptionSpec& spec, const OptionValue& value, const std::string& where) {
  const auto number = [&]() -> std::optional<double> {
    if (const auto* i = std::get_if<int64_t>(&value)) return static_cast<double>(*i);
    if (const auto* d = std::get_if<double>(&value)) return *d;
    return std::nullopt;
  }();
  const std::string shown = option_value_to_string(value);
  if (!spec.members.empty()) {
    bool found = false;
    for (const auto& m : spec.members) found |= m == shown;
    if (!found)
      throw_error(ErrorKind::Usage, "{}: '{}' is not one of {}", where, shown, fmt::join(spec.members, ", "));
  }
  switch (spec.check) {
    case OptionCheck::None: break;
    case OptionCheck::ExistingFile:
      if (const auto* s = std::get_if<std::string>(&value); s && !s->empty() && !std::filesystem::is_regular_file(*s))
        throw_error(ErrorKind::Usage, "{}: file '{}' does not exist", where, *s);
      break;
    case OptionCheck::ExistingPath:
      if (const auto* s = std::get_if<std::string>(&value); s && !s->empty() && !std::filesystem::exists(*s))
        throw_error(ErrorKind::Usage, "{}: path '{}' does not exist", where, *s);
      break;
    case OptionCheck::Positive:
      if (number && !(*number > 0)) throw_error(ErrorKind::Usage, "{}: {} must be positive", where, shown);
      break;
    case OptionCheck::NonNegative:
      if (number && !(*number >= 0)) throw_error(ErrorKind::Usage, "{}: {} must not be negative", where, shown);
      break;
    case OptionCheck::Range:
      if (number && !(*number >= spec.min && *number <= spec.max))
        throw_error(ErrorKind::Usage, "{}: {} is outside [{:g}, {:g}]", where, shown, spec.min, spec.max);
      break;
  }
}

}  // namespace slmopt::pipeline
