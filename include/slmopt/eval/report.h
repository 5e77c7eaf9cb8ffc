// The accuracy report every optimising subcommand writes: JSON for machines (CI gates, dashboards) and Markdown
// for people. One struct holds what was measured; the two writers only format it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace slmopt {

struct TensorReport {
  std::string name;
  std::vector<int64_t> shape;
  std::string source_type;
  std::string output_type;
  double relative_error = 0.0;                  // ||W - Ŵ||_F / ||W||_F
  std::optional<double> weighted_relative_error;  // with the importance (imatrix) weights, when used
  std::string reason;                           // why this output type (type selection, fallbacks, --keep)
};

struct LayerReconstruction {
  std::string name;                 // e.g. "model.layers.3.self_attn.q_proj.weight"
  double relative_output_error = 0;  // ||XWᵀ - XŴᵀ||_F / ||XWᵀ||_F on calibration activations
  double rtn_relative_output_error = -1;  // the same for plain RTN on the same grid (-1: not measured)
};

struct EvalComparison {
  std::string text_path;
  int64_t ctx = 0;
  int64_t windows = 0;
  int64_t tokens_scored = 0;
  double nll_original = 0;   // nats/token
  double nll_output = 0;
  double ppl_original = 0;
  double ppl_output = 0;
  double mean_kl = 0;         // mean over scored positions of KL(original ‖ output), nats
  double top1_agreement = 0;  // fraction of positions where both argmaxes agree
  double ppl_increase_percent() const { return ppl_original > 0 ? 100.0 * (ppl_output / ppl_original - 1.0) : 0; }
};

struct GateResult {
  std::string name;  // "max-ppl-increase", "max-kl"
  double limit = 0;
  double value = 0;
  bool passed = true;
};

// A small table for the Markdown report (the JSON carries the same facts in `extra`).
struct ReportTable {
  std::string title;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};

struct AccuracyReport {
  std::string command;          // e.g. "quantize"
  std::string command_line;     // how slmopt was invoked ("" from library use)
  std::string tool_version;
  std::string input_path, input_format;
  std::string output_path, output_format;
  uint64_t input_bytes = 0, output_bytes = 0;
  int64_t parameters = 0;
  double bits_per_weight = 0;   // over all tensors of the output
  double input_bits_per_weight = 0;  // over all tensors of the input (0: unknown)
  int64_t output_parameters = 0;     // parameters of the output (0: same as `parameters`)
  std::string method;           // rtn, imatrix-rtn, gptq, awq
  std::string type;             // preset or type name
  nlohmann::json settings = nlohmann::json::object();  // method/calibration settings as given
  std::vector<TensorReport> tensors;
  std::vector<LayerReconstruction> layers;
  std::optional<EvalComparison> eval;
  std::vector<GateResult> gates;
  nlohmann::json timings = nlohmann::json::object();  // seconds: total, calibration, solver, eval, write
  nlohmann::json extra = nlohmann::json::object();    // subcommand-specific figures (pruning, distillation)
  std::vector<std::string> notes;    // what a reader must know: fallbacks, tensors left unquantized, widened types
  std::vector<ReportTable> tables;   // readable summaries of `extra` for the Markdown report
};

// "3.1x smaller" / "1.84x larger" / "the same size": output against input on disk.
std::string size_change_text(uint64_t input_bytes, uint64_t output_bytes);

nlohmann::json report_to_json(const AccuracyReport& report);
std::string report_to_markdown(const AccuracyReport& report);
// Writes both files atomically.
void write_report(const AccuracyReport& report, const std::string& json_path, const std::string& markdown_path);
// `OUT.gguf` → {"OUT.report.json", "OUT.report.md"}; a folder OUT → OUT/report.json, OUT/report.md; an explicit
// --report PATH (with or without .json) → PATH.json + PATH.md.
std::pair<std::string, std::string> report_paths(const std::string& output_path, const std::string& report_option);

}  // namespace slmopt
