// Recipe parsing (yaml-cpp): every key is checked against the option table of the stage it belongs to, with
// the table's types and checks, and every error names the recipe file and line. Nothing is loaded or written
// here, so a bad recipe leaves no output behind.
#include "slmopt/pipeline/recipe.h"

#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "slmopt/core/error.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/pipeline/stage.h"
#include "slmopt/quant/type_selection.h"
#include "sha256_file.h"

namespace slmopt::pipeline {
namespace {

namespace fs = std::filesystem;

struct Parser {
  std::string path;
  fs::path dir;

  [[noreturn]] void fail(const YAML::Node& node, const std::string& message) const {
    throw Error(ErrorKind::Usage, fmt::format("{}:{}: {}", path, node.Mark().line + 1, message));
  }

  std::string resolve(const std::string& value) const {
    if (value.empty() || fs::path(value).is_absolute()) return value;
    return (dir / value).lexically_normal().string();
  }

  // One recipe value converted to the table's type for `spec`, checked like the CLI checks it.
  OptionValue convert(const OptionSpec& spec, const YAML::Node& node, const std::string& key) const {
    const std::string where = fmt::format("{}:{}: key '{}'", path, node.Mark().line + 1, key);
    const auto expect = [&](const char* what) -> OptionValue {
      throw Error(ErrorKind::Usage, fmt::format("{}: expected {}, got {}", where, what,
                                                node.IsScalar() ? "'" + node.Scalar() + "'" : "a nested value"));
    };
    if (spec.kind != OptionKind::List && !node.IsScalar()) return expect(option_kind_name(spec.kind));
    OptionValue value;
    try {
      switch (spec.kind) {
        case OptionKind::String: value = spec.is_path ? resolve(node.as<std::string>()) : node.as<std::string>(); break;
        case OptionKind::Int: value = node.as<int64_t>(); break;
        case OptionKind::Float: value = node.as<double>(); break;
        case OptionKind::Flag: value = node.as<bool>(); break;
        case OptionKind::List: {
          std::vector<std::string> items;
          if (node.IsScalar()) items.push_back(node.as<std::string>());
          else if (node.IsSequence())
            for (const auto& item : node) {
              if (!item.IsScalar()) return expect("a list of strings");
              items.push_back(item.as<std::string>());
            }
          else return expect("a list of strings");
          value = items;
          break;
        }
      }
    } catch (const YAML::BadConversion&) {
      return expect(option_kind_name(spec.kind));
    }
    check_option_value(spec, value, where);
    return value;
  }

  // The keys of `map` set options of `stage` (one of its table's rows each; the CLI-only rows are refused).
  void set_options(const StageInfo& stage, const YAML::Node& map, OptionValues& values,
                   const std::set<std::string>& skip) const {
    for (auto it = map.begin(); it != map.end(); ++it) {
      const std::string key = it->first.as<std::string>();
      if (skip.count(key)) continue;
      const OptionSpec* spec = stage.find_option(key);
      if (spec == nullptr) {
        std::string known;
        for (const auto& o : stage.options)
          if (o.scope == OptionScope::Everywhere) known += (known.empty() ? "" : ", ") + o.name;
        fail(it->first, fmt::format("unknown key '{}' for stage {} (known: {})", key, stage.name, known));
      }
      if (spec->scope == OptionScope::Cli)
        fail(it->first, fmt::format("key '{}' of stage {} is set by the recipe itself (model, output folder, "
                                    "report, gates)", key, stage.name));
      values.set(key, convert(*spec, it->second, key));
    }
  }

  const YAML::Node& need_map(const YAML::Node& node, const std::string& what) const {
    if (!node.IsMap()) fail(node, fmt::format("{} must be a mapping of keys to values", what));
    return node;
  }
};

// The recipe's calibration / evaluation sections: section key → the option it sets in a stage's table.
const std::map<std::string, std::string> kCalibrationKeys = {
    {"text", "calib"}, {"tokens", "calib-tokens"}, {"samples", "calib-samples"}, {"seqlen", "calib-seqlen"},
    {"seed", "seed"}};
const std::map<std::string, std::string> kEvaluationKeys = {
    {"text", "eval"}, {"tokens", "tokens"}, {"ctx", "ctx"}, {"max-windows", "max-windows"}};

struct Section {
  std::vector<std::pair<std::string, YAML::Node>> entries;  // option name (quantize/prune spelling), value node
};

Section read_section(const Parser& p, const YAML::Node& node, const std::map<std::string, std::string>& keys,
                     const std::string& name) {
  Section s;
  if (!node) return s;
  p.need_map(node, name);
  for (auto it = node.begin(); it != node.end(); ++it) {
    const std::string key = it->first.as<std::string>();
    auto k = keys.find(key);
    if (k == keys.end()) {
      std::string known;
      for (const auto& [kk, v] : keys) known += (known.empty() ? "" : ", ") + kk;
      p.fail(it->first, fmt::format("unknown key '{}' in {} (known: {})", key, name, known));
    }
    s.entries.emplace_back(k->second, it->second);
  }
  return s;
}

// Sets a section's values in a step whose stage has those options and did not set them itself.
void inject(const Parser& p, const StageInfo& stage, const Section& section, OptionValues& values,
            const std::map<std::string, std::string>& rename) {
  for (const auto& [option, node] : section.entries) {
    auto r = rename.find(option);
    const std::string name = r == rename.end() ? option : r->second;
    const OptionSpec* spec = stage.find_option(name);
    if (spec == nullptr || values.given(name)) continue;
    values.set(name, p.convert(*spec, node, name));
  }
}

std::optional<int> int_bits(const std::string& type) {
  static const std::map<std::string, int> bits = {{"int2", 2}, {"int3", 3}, {"int4", 4}, {"int8", 8}};
  auto it = bits.find(type);
  return it == bits.end() ? std::nullopt : std::optional<int>(it->second);
}

}  // namespace

std::string Recipe::artifact_path(const RecipeStep& target) const {
  const std::string format = target.values.str("format");
  const std::string base = (fs::path(output) / target.name).string();
  if (format == "gguf") return base + ".gguf";
  return base;  // hf and onnx: a folder (io/onnx_folder.h)
}

std::string Recipe::report_base(const RecipeStep& target) const {
  return (fs::path(output) / "reports" / target.name).string();
}

namespace {
Recipe parse_recipe_nodes(const std::string& path, const std::string& output_override);
}  // namespace

// yaml-cpp throws for shapes the checks above do not expect (a mapping used as a key, `as<std::string>()` of a
// sequence, nesting past its depth guard): every one is the recipe's fault, so it is a usage error naming the file
// and line, never an "internal error" (found by tests/fuzz/recipe_fuzz.cpp).
Recipe parse_recipe(const std::string& path, const std::string& output_override) {
  try {
    return parse_recipe_nodes(path, output_override);
  } catch (const YAML::Exception& e) {
    throw Error(ErrorKind::Usage, fmt::format("{}:{}: {}", path, e.mark.is_null() ? 0 : e.mark.line + 1, e.msg));
  }
}

namespace {
Recipe parse_recipe_nodes(const std::string& path, const std::string& output_override) {
  if (!fs::is_regular_file(path)) throw_error(ErrorKind::Usage, "recipe '{}' does not exist", path);
  Parser p{path, fs::path(path).parent_path()};
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::ParserException& e) {
    throw Error(ErrorKind::Usage, fmt::format("{}:{}: not valid YAML ({})", path, e.mark.line + 1, e.msg));
  }
  if (!root.IsMap()) throw_error(ErrorKind::Usage, "{}: a recipe is a mapping (model, output, stages, targets, ...)", path);

  Recipe r;
  r.path = path;
  r.sha256 = sha256_of_file(path);
  static const std::set<std::string> top = {"model", "output", "calibration", "evaluation", "stages", "targets", "gates"};
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string key = it->first.as<std::string>();
    if (!top.count(key))
      p.fail(it->first, fmt::format("unknown key '{}' (known: model, output, calibration, evaluation, stages, "
                                    "targets, gates)", key));
  }
  if (!root["model"] || !root["model"].IsScalar()) throw_error(ErrorKind::Usage, "{}: key 'model' (a path) is required", path);
  r.model_as_written = root["model"].as<std::string>();
  r.model = p.resolve(r.model_as_written);
  // The error_code form: a path the system cannot even look up (e.g. a name over NAME_MAX) is the recipe's error,
  // not std::filesystem_error escaping as an internal one (found by the recipe fuzz harness).
  std::error_code lookup;
  if (!fs::exists(r.model, lookup))
    p.fail(root["model"], lookup ? fmt::format("key 'model': '{}': {}", r.model, lookup.message())
                                 : fmt::format("key 'model': '{}' does not exist", r.model));
  if (!output_override.empty()) r.output = output_override;
  else if (root["output"] && root["output"].IsScalar()) r.output = p.resolve(root["output"].as<std::string>());
  else throw_error(ErrorKind::Usage, "{}: key 'output' (a folder) is required unless -o/--output is given", path);

  const Section calibration = read_section(p, root["calibration"], kCalibrationKeys, "calibration");
  const Section evaluation = read_section(p, root["evaluation"], kEvaluationKeys, "evaluation");
  r.has_evaluation = !evaluation.entries.empty();

  if (const YAML::Node gates = root["gates"]) {
    p.need_map(gates, "gates");
    for (auto it = gates.begin(); it != gates.end(); ++it) {
      const std::string key = it->first.as<std::string>();
      double* slot = key == "max-ppl-increase" ? &r.gates.max_ppl_increase
                     : key == "max-kl"         ? &r.gates.max_kl
                     : key == "max-size-mb"    ? &r.gates.max_size_mb
                                               : nullptr;
      if (!slot) p.fail(it->first, fmt::format("unknown key '{}' in gates (known: max-ppl-increase, max-kl, max-size-mb)", key));
      const OptionSpec spec = float_option(key, -1, "").with_check(OptionCheck::NonNegative);
      *slot = std::get<double>(p.convert(spec, it->second, key));
    }
    if ((r.gates.max_ppl_increase >= 0 || r.gates.max_kl >= 0) && !r.has_evaluation)
      p.fail(gates, "gates max-ppl-increase and max-kl need an evaluation section (text or tokens)");
  }

  const std::map<std::string, std::string> eval_stage_names = {{"eval", "text"}};
  if (const YAML::Node stages = root["stages"]) {
    if (!stages.IsSequence()) p.fail(stages, "'stages' must be a list of single-key mappings such as '- prune: {...}'");
    int index = 0;
    for (const auto& item : stages) {
      ++index;
      if (!item.IsMap() || item.size() != 1) p.fail(item, "a stage is a single-key mapping such as '- prune: {ffn-ratio: 0.25}'");
      const std::string name = item.begin()->first.as<std::string>();
      const StageInfo* stage = find_stage(name);
      if (stage == nullptr || name == "quantize" || name == "compile")
        p.fail(item.begin()->first, fmt::format("'{}' is not a recipe stage (stages: prune, distill-export, eval; "
                                                "quantize and compile belong in targets)", name));
      RecipeStep step{name, fmt::format("{}-{}", index, name), OptionValues(stage->options), item.Mark().line + 1};
      const YAML::Node body = item.begin()->second;
      if (body && !body.IsNull()) p.set_options(*stage, p.need_map(body, "stage " + name), step.values, {});
      if (!step.values.given("imatrix-in")) inject(p, *stage, calibration, step.values, {});
      // Only the eval stage reads the evaluation text: targets are what the recipe evaluates.
      if (name == "eval") inject(p, *stage, evaluation, step.values, eval_stage_names);
      r.stages.push_back(std::move(step));
    }
  }

  const YAML::Node targets = root["targets"];
  if (!targets || !targets.IsSequence() || targets.size() == 0)
    throw_error(ErrorKind::Usage, "{}: key 'targets' (a list of at least one target) is required", path);
  std::set<std::string> names;
  static const std::regex safe_name("[A-Za-z0-9][A-Za-z0-9._-]*");
  for (const auto& item : targets) {
    p.need_map(item, "a target");
    const YAML::Node name_node = item["name"];
    if (!name_node || !name_node.IsScalar()) p.fail(item, "a target needs a 'name' (its artifact's file name)");
    const std::string name = name_node.as<std::string>();
    if (!std::regex_match(name, safe_name) || name == "reports" || name == "stages")
      p.fail(name_node, fmt::format("target name '{}': use letters, digits, '.', '_' and '-' (not 'reports' or 'stages')", name));
    if (!names.insert(name).second) p.fail(name_node, fmt::format("target name '{}' is used twice", name));
    const std::string stage_name = item["stage"] && item["stage"].IsScalar() ? item["stage"].as<std::string>() : "quantize";
    if (stage_name != "quantize" && stage_name != "compile")
      p.fail(item["stage"], "key 'stage': a target is a quantize invocation (the default: format + type + method) "
             "or 'stage: compile' (a conversion: gguf/hf f32|f16|bf16|q8_0, onnx f32|f16|int8|int8-dynamic|int4)");
    const StageInfo& quantize = *find_stage(stage_name);
    RecipeStep step{stage_name, name, OptionValues(quantize.options), item.Mark().line + 1};
    p.set_options(quantize, item, step.values, {"name", "stage"});
    if (!step.values.given("imatrix-in")) inject(p, quantize, calibration, step.values, {});
    inject(p, quantize, evaluation, step.values, {});

    // Refuse a format/type pair the stage would refuse, now, before anything is written.
    const std::string format = step.values.str("format"), type = step.values.str("type");
    if (format != "gguf" && format != "hf" && format != "onnx") p.fail(item, fmt::format("target {}: format '{}': choose gguf, hf or onnx", name, format));
    if (stage_name == "compile") {
      static const std::set<std::string> gguf_hf = {"keep", "f32", "f16", "bf16"}, onnx = {"keep", "f32", "f16", "int8", "int8-dynamic", "int4"};
      const bool ok = format == "onnx" ? onnx.count(type) > 0 : gguf_hf.count(type) > 0 || (format == "gguf" && type == "q8_0");
      if (!ok) p.fail(item, fmt::format("target {}: compile --format {} does not take type '{}'", name, format, type));
      r.targets.push_back(std::move(step));
      continue;
    }
    const bool is_int = int_bits(type).has_value();
    if (!is_int && !preset_from_name(type))
      p.fail(item, fmt::format("target {}: type '{}' is neither a GGUF preset nor an integer grid (int2, int3, int4, int8)", name, type));
    if (is_int == (format == "gguf"))
      p.fail(item, fmt::format("target {}: format {} takes {}", name, format, format == "gguf" ? "a preset such as q4_k_m" : "an integer grid such as int4"));
    if (format == "onnx" && type != "int4") p.fail(item, fmt::format("target {}: format onnx takes type int4", name));
    // int grids with rtn need no calibration (rounding only), like GGUF presets with rtn.
    const bool calibrated = step.values.str("method") != "rtn";
    const bool has_calib = !step.values.str("calib").empty() || !step.values.str("calib-tokens").empty();
    if (calibrated && !has_calib)
      p.fail(item, fmt::format("target {}: method {} / type {} needs a calibration section (or calib in the target)",
                               name, step.values.str("method"), type));
    r.targets.push_back(std::move(step));
  }
  for (auto& t : r.targets) {
    t.values.set("output", r.artifact_path(t));
    t.values.set("report", r.report_base(t));
  }
  return r;
}
}  // namespace

}  // namespace slmopt::pipeline
