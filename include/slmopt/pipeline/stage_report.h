// Report plumbing shared by the optimising stages: the common header fields, output statistics, the accuracy
// gates, and writing + printing the report.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "slmopt/eval/perplexity.h"
#include "slmopt/eval/report.h"
#include "slmopt/ir/model.h"
#include "slmopt/pipeline/calibration.h"

namespace slmopt::pipeline {

AccuracyReport base_report(const std::string& command, const Model& input, const std::string& output_path,
                           const std::string& output_format);
// Output size on disk (file or folder) and bits per weight of the written model.
void fill_output_stats(AccuracyReport& report, const Model& written);
// The same for a written GGUF file, from its header alone (tensor shapes and types): no tensor data is read, so
// an 8B output is not paged back in just to count its bytes.
void fill_output_stats_from_gguf_header(AccuracyReport& report);
EvalComparison to_eval_comparison(const ComparisonResult& result, const EvalTextOptions& options);
// Adds --max-ppl-increase / --max-kl gates (negative = not set). Error(Usage) when a gate is set without an eval.
void add_gates(AccuracyReport& report, double max_ppl_increase, double max_kl);
// Writes the report files, prints a summary (or the JSON) unless `quiet`, and throws Error(Gate) when a gate
// failed — after the output and report are complete, so a CI job can still inspect them.
void finish_report(const AccuracyReport& report, const std::string& output_path, const std::string& report_option,
                   bool json, bool quiet = false);

// Bytes on disk of a file, or of every file in a folder (recursively).
uint64_t path_bytes(const std::string& path);
// Results go to stdout; --json prints one JSON document instead of text.
void print_json(const nlohmann::json& document);
std::string human_bytes(double bytes);
double seconds_since(std::chrono::steady_clock::time_point t);

}  // namespace slmopt::pipeline
