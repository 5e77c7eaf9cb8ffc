#include "slmopt/eval/report.h"

#include <cmath>
#include <filesystem>

#include <fmt/format.h>

#include "slmopt/core/atomic_file.h"

namespace slmopt {

nlohmann::json report_to_json(const AccuracyReport& r) {
  nlohmann::json j;
  j["command"] = r.command;
  if (!r.command_line.empty()) j["command_line"] = r.command_line;
  j["tool_version"] = r.tool_version;
  j["input"] = {{"path", r.input_path}, {"format", r.input_format}, {"bytes", r.input_bytes}};
  j["output"] = {{"path", r.output_path}, {"format", r.output_format}, {"bytes", r.output_bytes}};
  j["parameters"] = r.parameters;
  j["bits_per_weight"] = r.bits_per_weight;
  if (r.input_bits_per_weight > 0) j["input_bits_per_weight"] = r.input_bits_per_weight;
  if (r.output_parameters > 0) j["output_parameters"] = r.output_parameters;
  j["size_ratio"] = r.input_bytes ? static_cast<double>(r.output_bytes) / static_cast<double>(r.input_bytes) : 0.0;
  j["method"] = r.method;
  j["type"] = r.type;
  j["settings"] = r.settings;
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& t : r.tensors) {
    nlohmann::json e = {{"name", t.name},           {"shape", t.shape},
                        {"source_type", t.source_type}, {"output_type", t.output_type},
                        {"relative_error", t.relative_error}};
    if (t.weighted_relative_error) e["weighted_relative_error"] = *t.weighted_relative_error;
    if (!t.reason.empty()) e["reason"] = t.reason;
    tensors.push_back(e);
  }
  j["tensors"] = tensors;
  if (!r.layers.empty()) {
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& l : r.layers) {
      nlohmann::json e = {{"name", l.name}, {"relative_output_error", l.relative_output_error}};
      if (l.rtn_relative_output_error >= 0) e["rtn_relative_output_error"] = l.rtn_relative_output_error;
      layers.push_back(e);
    }
    j["layer_reconstruction"] = layers;
  }
  if (r.eval) {
    const auto& e = *r.eval;
    j["eval"] = {{"text", e.text_path},
                 {"ctx", e.ctx},
                 {"windows", e.windows},
                 {"tokens_scored", e.tokens_scored},
                 {"nll_original", e.nll_original},
                 {"nll_output", e.nll_output},
                 {"ppl_original", e.ppl_original},
                 {"ppl_output", e.ppl_output},
                 {"ppl_delta", e.ppl_output - e.ppl_original},
                 {"ppl_increase_percent", e.ppl_increase_percent()},
                 {"mean_kl", e.mean_kl},
                 {"top1_agreement", e.top1_agreement}};
  }
  nlohmann::json gates = nlohmann::json::array();
  for (const auto& g : r.gates)
    gates.push_back({{"name", g.name}, {"limit", g.limit}, {"value", g.value}, {"passed", g.passed}});
  j["gates"] = gates;
  j["timings_s"] = r.timings;
  if (!r.extra.empty()) j["extra"] = r.extra;
  if (!r.notes.empty()) j["notes"] = r.notes;
  return j;
}

namespace {
std::string mib(uint64_t bytes) { return fmt::format("{:.2f} MiB", static_cast<double>(bytes) / (1 << 20)); }
std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "×" : "") + std::to_string(shape[i]);
  return s;
}
}  // namespace

std::string size_change_text(uint64_t input_bytes, uint64_t output_bytes) {
  if (input_bytes == 0 || output_bytes == 0) return "size unknown";
  const double ratio = static_cast<double>(input_bytes) / static_cast<double>(output_bytes);
  if (std::abs(ratio - 1.0) < 0.005) return "the same size";
  return ratio > 1 ? fmt::format("{:.2f}x smaller", ratio) : fmt::format("{:.2f}x larger", 1.0 / ratio);
}

std::string report_to_markdown(const AccuracyReport& r) {
  std::string md = fmt::format("# slmopt {} report\n\n", r.command);
  if (!r.command_line.empty()) md += fmt::format("```\n{}\n```\n\n", r.command_line);
  if (!r.notes.empty()) {
    for (const auto& n : r.notes) md += "- " + n + "\n";
    md += "\n";
  }
  md += "| | |\n|---|---|\n";
  md += fmt::format("| input | `{}` ({}, {}) |\n", r.input_path, r.input_format, mib(r.input_bytes));
  md += fmt::format("| output | `{}` ({}, {}) |\n", r.output_path, r.output_format, mib(r.output_bytes));
  if (r.input_bytes)
    md += fmt::format("| size on disk | {:.3f} of the input ({}) |\n",
                      static_cast<double>(r.output_bytes) / static_cast<double>(r.input_bytes),
                      size_change_text(r.input_bytes, r.output_bytes));
  if (r.output_parameters > 0 && r.output_parameters != r.parameters)
    md += fmt::format("| parameters | {} → {} ({:.3f}) |\n", r.parameters, r.output_parameters,
                      static_cast<double>(r.output_parameters) / static_cast<double>(r.parameters));
  else
    md += fmt::format("| parameters | {} |\n", r.parameters);
  if (r.bits_per_weight > 0) {
    if (r.input_bits_per_weight > 0)
      md += fmt::format("| bits per weight | {:.3f} → {:.3f} |\n", r.input_bits_per_weight, r.bits_per_weight);
    else
      md += fmt::format("| bits per weight | {:.3f} |\n", r.bits_per_weight);
  }
  if (!r.method.empty()) md += fmt::format("| method | {} |\n", r.method);
  if (!r.type.empty()) md += fmt::format("| type | {} |\n", r.type);
  for (const auto& [k, v] : r.settings.items()) md += fmt::format("| {} | {} |\n", k, v.is_string() ? v.get<std::string>() : v.dump());
  md += fmt::format("| slmopt | {} |\n\n", r.tool_version);

  if (r.eval) {
    const auto& e = *r.eval;
    md += "## Accuracy\n\n";
    md += fmt::format("Evaluated on `{}`: {} windows of {} tokens, {} tokens scored.\n\n", e.text_path, e.windows,
                      e.ctx, e.tokens_scored);
    md += "| metric | original | output | change |\n|---|---|---|---|\n";
    md += fmt::format("| perplexity | {:.4f} | {:.4f} | {:+.4f} ({:+.3f} %) |\n", e.ppl_original, e.ppl_output,
                      e.ppl_output - e.ppl_original, e.ppl_increase_percent());
    md += fmt::format("| nats/token | {:.5f} | {:.5f} | {:+.5f} |\n", e.nll_original, e.nll_output,
                      e.nll_output - e.nll_original);
    md += fmt::format("| mean KL(original ‖ output) | | {:.6f} | |\n", e.mean_kl);
    md += fmt::format("| top-1 agreement | | {:.4f} % | |\n\n", 100.0 * e.top1_agreement);
  }
  if (!r.gates.empty()) {
    md += "## Gates\n\n| gate | limit | value | result |\n|---|---|---|---|\n";
    for (const auto& g : r.gates)
      md += fmt::format("| {} | {:g} | {:.6g} | {} |\n", g.name, g.limit, g.value, g.passed ? "pass" : "**FAIL**");
    md += "\n";
  }
  if (!r.layers.empty()) {
    md += "## Layer reconstruction (calibration data)\n\n| linear | relative output error | RTN on the same grid |\n|---|---|---|\n";
    for (const auto& l : r.layers)
      md += fmt::format("| `{}` | {:.5f} | {} |\n", l.name, l.relative_output_error,
                        l.rtn_relative_output_error >= 0 ? fmt::format("{:.5f}", l.rtn_relative_output_error) : "");
    md += "\n";
  }
  if (!r.tensors.empty()) {
    md += "## Tensors\n\n| tensor | shape | from | to | relative error | why |\n|---|---|---|---|---|---|\n";
    for (const auto& t : r.tensors)
      md += fmt::format("| `{}` | {} | {} | {} | {:.3e} | {} |\n", t.name, shape_text(t.shape), t.source_type,
                        t.output_type, t.relative_error, t.reason);
    md += "\n";
  }
  if (!r.timings.empty()) {
    md += "## Time\n\n| step | seconds |\n|---|---|\n";
    for (const auto& [k, v] : r.timings.items()) md += fmt::format("| {} | {:.2f} |\n", k, v.get<double>());
    md += "\n";
  }
  for (const auto& t : r.tables) {
    md += "## " + t.title + "\n\n|";
    for (const auto& h : t.header) md += " " + h + " |";
    md += "\n|";
    for (size_t i = 0; i < t.header.size(); ++i) md += "---|";
    md += "\n";
    for (const auto& row : t.rows) {
      md += "|";
      for (const auto& cell : row) md += " " + cell + " |";
      md += "\n";
    }
    md += "\n";
  }
  // One line per detail: the full values stay machine-readable without turning into hundreds of lines.
  if (!r.extra.empty()) {
    md += "## Details\n\n";
    for (const auto& [k, v] : r.extra.items()) md += fmt::format("- `{}`: `{}`\n", k, v.dump());
  }
  return md;
}

void write_report(const AccuracyReport& report, const std::string& json_path, const std::string& markdown_path) {
  write_file_atomic(json_path, report_to_json(report).dump(2) + "\n");
  write_file_atomic(markdown_path, report_to_markdown(report));
}

std::pair<std::string, std::string> report_paths(const std::string& output_path, const std::string& report_option) {
  namespace fs = std::filesystem;
  if (!report_option.empty()) {
    std::string base = report_option;
    if (fs::path(base).extension() == ".json" || fs::path(base).extension() == ".md")
      base = (fs::path(base).parent_path() / fs::path(base).stem()).string();
    return {base + ".json", base + ".md"};
  }
  if (fs::is_directory(output_path))
    return {(fs::path(output_path) / "report.json").string(), (fs::path(output_path) / "report.md").string()};
  fs::path p(output_path);
  const std::string base = (p.parent_path() / p.stem()).string();
  return {base + ".report.json", base + ".report.md"};
}

}  // namespace slmopt
