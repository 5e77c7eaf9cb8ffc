// slmopt quantize MODEL --type PRESET -o OUT.gguf [--calib FILE] [--eval FILE] [--report PATH] [gates]:
// weight-only quantization to GGUF with llama.cpp's per-tensor mixes, optional importance weighting, and an
// accuracy report comparing the written file against the original model.
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "calibration_options.h"
#include "commands.h"
#include "eval_windows.h"
#include "report_helpers.h"
#include "slmopt/core/error.h"
#include "slmopt/core/log.h"
#include "slmopt/core/progress.h"
#include "slmopt/eval/perplexity.h"
#include "slmopt/eval/report.h"
#include "slmopt/io/gguf.h"
#include "slmopt/io/model_loader.h"
#include "slmopt/quant/tensor_quantizer.h"

namespace slmopt::driver {
namespace {

struct QuantizeOptions {
  std::string model;
  std::string output;
  std::string format = "gguf";
  std::string type = "q4_k_m";
  std::vector<std::string> type_for;
  std::vector<std::string> keep;
  std::string encoder = "search";
  CalibrationOptions calib;
  std::string imatrix_in, imatrix_out;
  EvalTextOptions eval;
  std::string report;
  double max_ppl_increase = -1;
  double max_kl = -1;
  bool dry_run = false;
  bool json = false;
};

std::string preset_names() {
  std::string s;
  for (const auto& p : quant_presets()) s += (s.empty() ? "" : ", ") + std::string(p.name);
  return s;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

void run_quantize(QuantizeOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  const auto preset = preset_from_name(o.type);
  if (!preset) throw_error(ErrorKind::Usage, "--type '{}' is not a preset; choose one of {}", o.type, preset_names());
  const auto encoder = encoder_from_name(o.encoder);
  if (!encoder) throw_error(ErrorKind::Usage, "--encoder '{}': choose search, reference or llama", o.encoder);
  if (o.format != "gguf")
    throw_error(ErrorKind::Usage, "--format {}: RTN quantization writes gguf (hf/onnx outputs come with --method gptq/awq "
                "and compile --format onnx)", o.format);
  if (!o.imatrix_in.empty() && o.calib.given())
    throw_error(ErrorKind::Usage, "--imatrix-in and --calib exclude each other");
  if (!o.imatrix_out.empty() && !o.calib.given())
    throw_error(ErrorKind::Usage, "--imatrix-out needs --calib (the importance matrix is computed from it)");

  TypeSelectionOptions selection;
  selection.preset = *preset;
  for (const auto& spec : o.type_for) selection.overrides.push_back(parse_type_for(spec));
  for (const auto& pattern : o.keep) selection.overrides.push_back(parse_keep(pattern));

  const Model model = load_model(o.model);
  model.validate();

  // Importance matrix: from calibration text, or a file saved by an earlier run.
  std::optional<ImportanceMatrix> importance;
  double calib_seconds = 0;
  if (o.calib.given()) {
    const auto t = std::chrono::steady_clock::now();
    const auto windows = build_calibration_windows(model, o.calib);
    spdlog::info("collecting the importance matrix over {} windows of {} tokens", windows.size(), o.calib.seqlen);
    const ModelRunner runner(model);
    importance = collect_importance(runner, windows);
    calib_seconds = seconds_since(t);
    if (!o.imatrix_out.empty()) save_importance(*importance, o.imatrix_out);
  } else if (!o.imatrix_in.empty()) {
    importance = load_importance(o.imatrix_in, model);
  }

  TensorQuantizer quantizer(model, selection, importance ? &*importance : nullptr, *encoder);
  if (o.dry_run) {
    for (const auto& c : quantizer.choices())
      std::printf("%-56s %-7s %s\n", c.name.c_str(), std::string(dtype_name(c.dtype)).c_str(), c.reason.c_str());
    return;
  }

  const auto quant_start = std::chrono::steady_clock::now();
  size_t two_d = 0;
  for (const Tensor* t : model.ordered_tensors()) two_d += t->rank() >= 2;
  Progress progress("quantizing " + std::string(preset_info(*preset).name), two_d, true);
  GgufWriteOptions gguf;
  gguf.file_type = static_cast<LlamaFileType>(preset_info(*preset).gguf_file_type);
  gguf.choose_dtype = [&](const std::string& name, const Tensor& t) {
    const DType target = quantizer.target(name);
    if (!traits(target).is_quantized) {
      quantizer.record_conversion(t, target);
      progress.advance();
    }
    return target;
  };
  gguf.encode = [&](const Tensor& t, DType dtype) {
    auto bytes = quantizer.encode(t, dtype);
    progress.advance();
    return bytes;
  };
  write_gguf(model, o.output, gguf);
  progress.finish();
  const double quant_seconds = seconds_since(quant_start);

  AccuracyReport report = base_report("quantize", model, o.output, "gguf");
  report.method = importance ? "imatrix-rtn" : "rtn";
  report.type = std::string(preset_info(*preset).name);
  report.settings = {{"encoder", o.encoder}, {"type_for", o.type_for}, {"keep", o.keep}};
  if (o.calib.given()) report.settings.update(o.calib.to_json());
  if (!o.imatrix_in.empty()) report.settings["imatrix_in"] = o.imatrix_in;
  for (const auto& r : quantizer.results()) {
    TensorReport t;
    t.name = r.name;
    t.shape = r.shape;
    t.source_type = std::string(dtype_name(r.from));
    t.output_type = std::string(dtype_name(r.to));
    t.relative_error = r.relative_error;
    t.weighted_relative_error = r.weighted_relative_error;
    report.tensors.push_back(t);
  }
  const Model written = load_model(o.output);
  fill_output_stats(report, written);
  report.timings["calibration"] = calib_seconds;
  report.timings["quantize_and_write"] = quant_seconds;

  if (!o.eval.text_path.empty() || !o.eval.tokens_path.empty()) {
    const auto t = std::chrono::steady_clock::now();
    const auto windows = build_eval_windows(model, o.eval);
    const ModelRunner original(model);
    const ModelRunner candidate(written);
    report.eval = to_eval_comparison(compare_models(original, candidate, windows), o.eval);
    report.timings["eval"] = seconds_since(t);
  }
  add_gates(report, o.max_ppl_increase, o.max_kl);
  report.timings["total"] = seconds_since(start);
  finish_report(report, o.output, o.report, o.json);
}

}  // namespace

CommandSpec quantize_command() {
  return {"quantize", "Quantize weights to a GGUF type or llama.cpp-style mix, with an accuracy report",
          [](CLI::App& sub, const GlobalOptions&) -> std::function<void()> {
            auto o = std::make_shared<QuantizeOptions>();
            sub.add_option("MODEL", o->model, "Hugging Face folder, .gguf or .onnx file")->required();
            sub.add_option("-o,--output", o->output, "Output file (.gguf)")->required();
            sub.add_option("--format", o->format, "Output format: gguf (default)");
            sub.add_option("--type", o->type, "Preset: " + preset_names() + " (default Q4_K_M)");
            sub.add_option("--type-for", o->type_for,
                           "PATTERN=TYPE: store matching tensors as TYPE (glob on HF or GGUF names, or re:REGEX); "
                           "repeatable, first match wins");
            sub.add_option("--keep", o->keep, "PATTERN: leave matching tensors in their current type; repeatable");
            sub.add_option("--encoder", o->encoder,
                           "Block encoder: search (default: never worse than llama.cpp's on weighted error), "
                           "reference (llama.cpp's quantize_row_*_ref, bit for bit), llama (llama.cpp's own)");
            add_calibration_options(sub, o->calib);
            sub.add_option("--imatrix-in", o->imatrix_in, "Importance matrix saved by --imatrix-out")
                ->check(CLI::ExistingFile);
            sub.add_option("--imatrix-out", o->imatrix_out, "Save the importance matrix computed from --calib");
            add_eval_text_options(sub, o->eval, false, "--eval");
            sub.add_option("--report", o->report, "Report path (default: beside the output, OUT.report.{json,md})");
            sub.add_option("--max-ppl-increase", o->max_ppl_increase,
                           "Exit with code 6 when perplexity rises by more than PCT percent (needs --eval)")
                ->check(CLI::NonNegativeNumber);
            sub.add_option("--max-kl", o->max_kl, "Exit with code 6 when mean KL(original||output) exceeds X (needs --eval)")
                ->check(CLI::NonNegativeNumber);
            sub.add_flag("--dry-run", o->dry_run, "Print the type chosen for each tensor and stop");
            sub.add_flag("--json", o->json, "Print the report as JSON on stdout");
            sub.footer(std::string("Importance: --calib runs the model over calibration windows and weights each column's "
                                   "squared error by its mean squared input activation.\n") + kEvalProtocolHelp);
            return [o] { run_quantize(*o); };
          }};
}

}  // namespace slmopt::driver
