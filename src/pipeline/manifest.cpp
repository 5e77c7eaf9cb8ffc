#include "slmopt/pipeline/manifest.h"

#include <filesystem>
#include <map>

#include <fmt/format.h>

#include "sha256_file.h"
#include "slmopt/core/atomic_file.h"
#include "slmopt/core/error.h"
#include "slmopt/core/mapped_file.h"

namespace slmopt::pipeline {
namespace {

namespace fs = std::filesystem;

nlohmann::json read_json(const std::string& path, const std::string& what) {
  if (!fs::is_regular_file(path)) throw_error(ErrorKind::Io, "{}: {} is missing (was the target written?)", path, what);
  try {
    return nlohmann::json::parse(read_text_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw_error(ErrorKind::BadInput, "{}: not JSON ({})", path, e.what());
  }
}

std::string fmt_or_dash(const nlohmann::json& v, const char* format) {
  return v.is_number() ? fmt::format(fmt::runtime(format), v.get<double>()) : std::string("–");
}

std::string markdown(const nlohmann::json& report) {
  std::string md = "# slmopt run: " + report["recipe"].get<std::string>() + "\n\n";
  md += "Model `" + report["model"].get<std::string>() + "`";
  if (report.contains("eval")) md += fmt::format(", evaluated on `{}`", report["eval"].get<std::string>());
  md += ". ★ marks the size/accuracy (bytes, mean KL) Pareto front.\n\n";
  md += "| target | format | type | method | size | bits/weight | perplexity | Δ ppl | mean KL | top-1 | eval tokens/s | front | gates |\n";
  md += "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|:-:|:-:|\n";
  for (const auto& t : report["targets"]) {
    md += fmt::format("| {} | {} | {} | {} | {:.2f} MB | {:.3f} | {} | {} | {} | {} | {} | {} | {} |\n",
                      t["name"].get<std::string>(), t["format"].get<std::string>(), t["type"].get<std::string>(),
                      t["method"].get<std::string>(), t["bytes"].get<double>() / 1e6, t["bits_per_weight"].get<double>(),
                      fmt_or_dash(t["perplexity"], "{:.4f}"), fmt_or_dash(t["ppl_increase_percent"], "{:+.2f} %"),
                      fmt_or_dash(t["mean_kl"], "{:.5f}"),
                      t["top1_agreement"].is_number() ? fmt::format("{:.2f} %", 100 * t["top1_agreement"].get<double>()) : "–",
                      fmt_or_dash(t["eval_tokens_per_second"], "{:.0f}"), t["pareto"].get<bool>() ? "★" : "",
                      t["passed"].get<bool>() ? "pass" : "**FAIL**");
  }
  if (report.contains("original_perplexity"))
    md += fmt::format("\nOriginal perplexity {:.4f}.\n", report["original_perplexity"].get<double>());
  if (report.contains("run") && report["run"].contains("seconds")) {
    const auto& run = report["run"];
    md += "\nWall time on this machine (s):";
    for (const auto& [step, seconds] : run["seconds"].items()) md += fmt::format(" {} {:.2f};", step, seconds.get<double>());
    md += fmt::format("\nShared calibration: {} set(s) of calibration windows, {} importance matrix(es), {} GPTQ/AWQ "
                      "run(s) for {} target(s).\n", run["calibration_window_sets"].get<int>(),
                      run["importance_matrices"].get<int>(), run["gptq_awq_runs"].get<int>(), report["targets"].size());
  }
  return md;
}

}  // namespace

std::vector<bool> pareto_front(const std::vector<double>& bytes, const std::vector<std::optional<double>>& kl) {
  std::vector<bool> front(bytes.size(), false);
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (!kl[i]) continue;
    bool dominated = false;
    for (size_t j = 0; j < bytes.size() && !dominated; ++j) {
      if (j == i || !kl[j]) continue;
      dominated = bytes[j] <= bytes[i] && *kl[j] <= *kl[i] && (bytes[j] < bytes[i] || *kl[j] < *kl[i]);
    }
    front[i] = !dominated;
  }
  return front;
}

AssembleResult assemble_outputs(const Recipe& recipe, const nlohmann::json& run_info) {
  AssembleResult out;
  nlohmann::json artifacts = nlohmann::json::array();
  nlohmann::json rows = nlohmann::json::array();
  std::vector<double> sizes;
  std::vector<std::optional<double>> kls;
  std::optional<double> original_ppl;
  std::string eval_text;
  for (const auto& target : recipe.targets) {
    const nlohmann::json report = read_json(recipe.report_base(target) + ".json", "the target's report");
    const std::string artifact = recipe.artifact_path(target);
    nlohmann::json hash = hash_path(artifact);
    // Tensors per stored type; a calibrated GGUF report lists block linears twice (type plan and GPTQ rows).
    std::map<std::string, std::string> type_of;
    for (const auto& t : report.value("tensors", nlohmann::json::array()))
      type_of[t.value("name", "")] = t.value("output_type", "?");
    std::map<std::string, int64_t> mix;
    for (const auto& [name, type] : type_of) ++mix[type];
    const double bytes = hash["bytes"].get<double>();

    nlohmann::json metrics = nlohmann::json::object();
    nlohmann::json gates = nlohmann::json::array();
    bool passed = true;
    const auto gate = [&](const char* name, double limit, double value) {
      if (limit < 0) return;
      const bool ok = value <= limit;
      gates.push_back({{"name", name}, {"limit", limit}, {"value", value}, {"passed", ok}});
      if (!ok) {
        passed = false;
        out.failed.push_back(fmt::format("{}: {} {:.6g} > {:g}", target.name, name, value, limit));
      }
    };
    std::optional<double> kl;
    if (report.contains("eval") && report["eval"].is_object()) {
      const auto& e = report["eval"];
      metrics = {{"ppl_original", e["ppl_original"]}, {"ppl", e["ppl_output"]},
                 {"ppl_increase_percent", e["ppl_increase_percent"]}, {"mean_kl", e["mean_kl"]},
                 {"top1_agreement", e["top1_agreement"]}, {"tokens_scored", e["tokens_scored"]},
                 {"windows", e["windows"]}, {"ctx", e["ctx"]}};
      kl = e["mean_kl"].get<double>();
      original_ppl = e["ppl_original"].get<double>();
      eval_text = e.value("text", "");
      gate("max-ppl-increase", recipe.gates.max_ppl_increase, e["ppl_increase_percent"].get<double>());
      gate("max-kl", recipe.gates.max_kl, *kl);
    }
    gate("max-size-mb", recipe.gates.max_size_mb, bytes / 1e6);
    sizes.push_back(bytes);
    kls.push_back(kl);

    nlohmann::json entry = {{"name", target.name},
                            {"path", fs::path(artifact).lexically_relative(recipe.output).generic_string()},
                            {"format", target.values.str("format")},
                            {"type", report.value("type", "")},
                            {"method", report.value("method", "")},
                            {"sha256", hash["sha256"]},
                            {"bytes", hash["bytes"]},
                            {"parameters", report.value("parameters", 0)},
                            {"bits_per_weight", report.value("bits_per_weight", 0.0)},
                            {"type_mix", mix},
                            {"metrics", metrics},
                            {"gates", gates},
                            {"passed", passed}};
    if (hash.contains("files")) entry["files"] = hash["files"];
    artifacts.push_back(entry);
    rows.push_back({{"name", target.name},
                    {"format", entry["format"]},
                    {"type", entry["type"]},
                    {"method", entry["method"]},
                    {"bytes", bytes},
                    {"bits_per_weight", entry["bits_per_weight"]},
                    {"perplexity", metrics.value("ppl", nlohmann::json())},
                    {"ppl_increase_percent", metrics.value("ppl_increase_percent", nlohmann::json())},
                    {"mean_kl", metrics.value("mean_kl", nlohmann::json())},
                    {"top1_agreement", metrics.value("top1_agreement", nlohmann::json())},
                    {"eval_tokens_per_second", report.contains("extra") ? report["extra"].value("eval_tokens_per_second", nlohmann::json()) : nlohmann::json()},
                    {"passed", passed}});
  }
  const std::vector<bool> front = pareto_front(sizes, kls);
  for (size_t i = 0; i < front.size(); ++i) {
    artifacts[i]["pareto"] = static_cast<bool>(front[i]);
    rows[i]["pareto"] = static_cast<bool>(front[i]);
  }

  const nlohmann::json input = hash_path(recipe.model);
  out.manifest = {{"format", "slmopt-manifest"},
                  {"version", 1},
                  {"slmopt_version", SLMOPT_VERSION},
                  {"recipe", {{"file", fs::path(recipe.path).filename().string()}, {"sha256", recipe.sha256}}},
                  {"input", {{"path", recipe.model_as_written}, {"sha256", input["sha256"]}, {"bytes", input["bytes"]}}},
                  {"gates", {{"max_ppl_increase", recipe.gates.max_ppl_increase},
                             {"max_kl", recipe.gates.max_kl},
                             {"max_size_mb", recipe.gates.max_size_mb}}},
                  {"artifacts", artifacts},
                  {"passed", out.failed.empty()}};
  out.report = {{"recipe", recipe.path}, {"model", recipe.model_as_written}, {"targets", rows}};
  if (!eval_text.empty()) out.report["eval"] = eval_text;
  if (original_ppl) out.report["original_perplexity"] = *original_ppl;
  if (!run_info.is_null()) out.report["run"] = run_info;
  const fs::path dir(recipe.output);
  write_file_atomic((dir / "manifest.json").string(), out.manifest.dump(2) + "\n");
  write_file_atomic((dir / "report.json").string(), out.report.dump(2) + "\n");
  write_file_atomic((dir / "report.md").string(), markdown(out.report));
  return out;
}

}  // namespace slmopt::pipeline
