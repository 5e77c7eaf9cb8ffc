#include "slmopt/pipeline/stage_report.h"

#include <cstdio>
#include <filesystem>
#include <iostream>

#include <algorithm>
#include <optional>

#include <fmt/format.h>

#include "slmopt/core/command_line.h"
#include "slmopt/core/error.h"
#include "slmopt/io/gguf_format.h"
#include "slmopt/io/model_loader.h"

namespace slmopt::pipeline {

void print_json(const nlohmann::json& document) { std::cout << document.dump(2) << std::endl; }

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", bytes, units[u]);
  return buf;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

uint64_t path_bytes(const std::string& path) {
  namespace fs = std::filesystem;
  if (fs::is_directory(path)) {
    uint64_t n = 0;
    for (const auto& e : fs::recursive_directory_iterator(path))
      if (e.is_regular_file()) n += e.file_size();
    return n;
  }
  if (!fs::exists(path)) return 0;
  uint64_t n = fs::file_size(path);
  // An ONNX model's weights may live in an external data file beside it (the exporter names it X.onnx.data;
  // other exporters use X.onnx_data): a size without it would understate the model many times over.
  if (fs::path(path).extension() == ".onnx")
    for (const char* suffix : {".data", "_data"})
      if (fs::is_regular_file(path + suffix)) n += fs::file_size(path + suffix);
  return n;
}

AccuracyReport base_report(const std::string& command, const Model& input, const std::string& output_path,
                           const std::string& output_format) {
  AccuracyReport r;
  r.command = command;
  r.command_line = command_line();
  r.tool_version = SLMOPT_VERSION;
  r.input_path = input.source_path;
  r.input_format = input.source_format;
  r.input_bytes = path_bytes(input.source_path);
  r.output_path = output_path;
  r.output_format = output_format;
  r.parameters = input.parameter_count();
  if (r.parameters > 0)
    r.input_bits_per_weight = 8.0 * static_cast<double>(input.total_bytes()) / static_cast<double>(r.parameters);
  return r;
}

void fill_output_stats(AccuracyReport& report, const Model& written) {
  report.output_bytes = path_bytes(report.output_path);
  const int64_t params = written.parameter_count();
  report.output_parameters = params;
  report.bits_per_weight = params ? 8.0 * static_cast<double>(written.total_bytes()) / static_cast<double>(params) : 0;
}

void fill_output_stats_from_gguf_header(AccuracyReport& report) {
  report.output_bytes = path_bytes(report.output_path);
  const GgufFile file = GgufFile::open(report.output_path);
  int64_t params = 0;
  size_t bytes = 0;
  for (const GgufTensorInfo& t : file.tensors()) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    params += n;
    bytes += t.nbytes;
  }
  report.bits_per_weight = params ? 8.0 * static_cast<double>(bytes) / static_cast<double>(params) : 0;
}

EvalComparison to_eval_comparison(const ComparisonResult& c, const EvalTextOptions& options) {
  EvalComparison e;
  e.text_path = options.text_path.empty() ? options.tokens_path : options.text_path;
  e.ctx = options.ctx;
  e.windows = c.original.windows;
  e.tokens_scored = c.original.tokens_scored;
  e.nll_original = c.original.mean_nll;
  e.nll_output = c.candidate.mean_nll;
  e.ppl_original = c.original.perplexity;
  e.ppl_output = c.candidate.perplexity;
  e.mean_kl = c.mean_kl;
  e.top1_agreement = c.top1_agreement;
  return e;
}

void add_gates(AccuracyReport& report, double max_ppl_increase, double max_kl) {
  if ((max_ppl_increase >= 0 || max_kl >= 0) && !report.eval)
    throw_error(ErrorKind::Usage, "--max-ppl-increase and --max-kl need an evaluation text (--eval)");
  if (max_ppl_increase >= 0) {
    const double v = report.eval->ppl_increase_percent();
    report.gates.push_back({"max-ppl-increase", max_ppl_increase, v, v <= max_ppl_increase});
  }
  if (max_kl >= 0) {
    const double v = report.eval->mean_kl;
    report.gates.push_back({"max-kl", max_kl, v, v <= max_kl});
  }
}

ReportTail report_tail_from_values(const OptionValues& v) {
  ReportTail t;
  t.eval = eval_from_values(v, "--eval");
  t.reference = v.str("reference");
  t.report = v.str("report");
  t.max_ppl_increase = v.f64("max-ppl-increase");
  t.max_kl = v.f64("max-kl");
  t.json = v.flag("json");
  return t;
}

void evaluate_and_finish(PipelineContext& ctx, AccuracyReport& report, const Model* written, ReportTail& tail,
                         std::chrono::steady_clock::time_point start) {
  if (tail.eval.given()) {
    if (written == nullptr) throw_error(ErrorKind::Internal, "evaluate_and_finish: --eval without the written model");
    const auto t = std::chrono::steady_clock::now();
    std::optional<Model> loaded_reference;
    if (!tail.reference.empty()) loaded_reference = load_model(tail.reference);
    const Model& reference_model = loaded_reference ? *loaded_reference : ctx.reference();
    const auto& windows = ctx.eval_windows(reference_model, tail.eval);
    const ModelRunner reference(reference_model);
    const ModelRunner candidate(*written);
    report.eval = to_eval_comparison(compare_models(reference, candidate, windows), tail.eval);
    report.timings["eval"] = seconds_since(t);
    // The written model's own speed, on at most 4 windows (the comparison above times both models together).
    const std::vector<EvalWindow> few(windows.begin(), windows.begin() + std::min<ptrdiff_t>(4, windows.size()));
    report.extra["eval_tokens_per_second"] = evaluate_perplexity(candidate, few).tokens_per_second;
  }
  add_gates(report, tail.max_ppl_increase, tail.max_kl);
  report.timings["total"] = seconds_since(start);
  finish_report(report, report.output_path, tail.report, tail.json, ctx.in_recipe);
}

void finish_report(const AccuracyReport& report, const std::string& output_path, const std::string& report_option,
                   bool json, bool quiet) {
  const auto [json_path, md_path] = report_paths(output_path, report_option);
  write_report(report, json_path, md_path);
  if (quiet) {
  } else if (json) {
    print_json(report_to_json(report));
  } else {
    // Like with like: the size change on disk next to both precisions, and the parameter change when a pass
    // removed some, so a wider output type (a BF16 model exported as F32) does not read as a smaller model.
    std::string compare = size_change_text(report.input_bytes, report.output_bytes) + " than the input (" +
                          human_bytes(static_cast<double>(report.input_bytes));
    if (report.input_bits_per_weight > 0) compare += fmt::format(", {:.3f} bits/weight", report.input_bits_per_weight);
    compare += ")";
    if (report.output_parameters > 0 && report.output_parameters != report.parameters)
      compare += fmt::format("; parameters {:.3f}x the input's", static_cast<double>(report.output_parameters) /
                                                                   static_cast<double>(report.parameters));
    std::printf("wrote %s (%s, %.3f bits/weight; %s)\n", output_path.c_str(),
                human_bytes(static_cast<double>(report.output_bytes)).c_str(), report.bits_per_weight,
                compare.c_str());
    for (const auto& note : report.notes) std::printf("note: %s\n", note.c_str());
    if (report.eval) {
      const auto& e = *report.eval;
      std::printf("perplexity %.4f -> %.4f (%+.3f %%), mean KL %.5f, top-1 agreement %.2f %% on %lld tokens\n",
                  e.ppl_original, e.ppl_output, e.ppl_increase_percent(), e.mean_kl, 100.0 * e.top1_agreement,
                  (long long)e.tokens_scored);
    }
    std::printf("report %s, %s\n", json_path.c_str(), md_path.c_str());
  }
  for (const auto& g : report.gates)
    if (!g.passed)
      throw_error(ErrorKind::Gate, "accuracy gate {} failed: {:.6g} > {:g} (output and report were written)", g.name,
                  g.value, g.limit);
}

}  // namespace slmopt::pipeline
