// Report plumbing shared by the optimising subcommands: the common header fields, output statistics, the
// accuracy gates, and writing + printing the report.
#pragma once

#include <string>

#include "eval_windows.h"
#include "slmopt/eval/perplexity.h"
#include "slmopt/eval/report.h"
#include "slmopt/ir/model.h"

namespace slmopt::driver {

AccuracyReport base_report(const std::string& command, const Model& input, const std::string& output_path,
                           const std::string& output_format);
// Output size on disk (file or folder) and bits per weight of the written model.
void fill_output_stats(AccuracyReport& report, const Model& written);
EvalComparison to_eval_comparison(const ComparisonResult& result, const EvalTextOptions& options);
// Adds --max-ppl-increase / --max-kl gates (negative = not set). Error(Usage) when a gate is set without an eval.
void add_gates(AccuracyReport& report, double max_ppl_increase, double max_kl);
// Writes the report files, prints a summary (or the JSON), and throws Error(Gate) when a gate failed — after
// the output and report are complete, so a CI job can still inspect them.
void finish_report(const AccuracyReport& report, const std::string& output_path, const std::string& report_option,
                   bool json);

// Bytes on disk of a file, or of every file in a folder (recursively).
uint64_t path_bytes(const std::string& path);

}  // namespace slmopt::driver
