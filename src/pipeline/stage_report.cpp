#include "slmopt/pipeline/stage_report.h"

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "slmopt/core/error.h"
#include "slmopt/io/gguf_format.h"

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
  return fs::exists(path) ? fs::file_size(path) : 0;
}

AccuracyReport base_report(const std::string& command, const Model& input, const std::string& output_path,
                           const std::string& output_format) {
  AccuracyReport r;
  r.command = command;
  r.tool_version = SLMOPT_VERSION;
  r.input_path = input.source_path;
  r.input_format = input.source_format;
  r.input_bytes = path_bytes(input.source_path);
  r.output_path = output_path;
  r.output_format = output_format;
  r.parameters = input.parameter_count();
  return r;
}

void fill_output_stats(AccuracyReport& report, const Model& written) {
  report.output_bytes = path_bytes(report.output_path);
  const int64_t params = written.parameter_count();
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

void finish_report(const AccuracyReport& report, const std::string& output_path, const std::string& report_option,
                   bool json, bool quiet) {
  const auto [json_path, md_path] = report_paths(output_path, report_option);
  write_report(report, json_path, md_path);
  if (quiet) {
  } else if (json) {
    print_json(report_to_json(report));
  } else {
    std::printf("wrote %s (%s, %.3f bits/weight, %.2fx smaller)\n", output_path.c_str(),
                human_bytes(static_cast<double>(report.output_bytes)).c_str(), report.bits_per_weight,
                report.output_bytes ? static_cast<double>(report.input_bytes) / static_cast<double>(report.output_bytes) : 0.0);
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
