// The quantize stage: weight-only quantization — GGUF presets with llama.cpp's per-tensor mixes (RTN,
// importance-weighted RTN, or GPTQ/AWQ rounding onto the type's grid), or integer grids written as Hugging Face
// GPTQ/AWQ checkpoints or ONNX MatMulNBits — with an accuracy report comparing the written model against the
// reference (the input checkpoint). The importance matrix and GPTQ/AWQ results come from the context, so targets
// of one recipe that need the same calibration share one run.
#include <algorithm>
#include <cstdio>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "int_grid_plan.h"
#include "stages.h"
#include "slmopt/core/error.h"
#include "slmopt/core/log.h"
#include "slmopt/core/progress.h"
#include "slmopt/eval/perplexity.h"
#include "slmopt/io/gguf.h"
#include "slmopt/io/hf_gptq.h"
#include "slmopt/io/model_loader.h"
#include "slmopt/io/onnx_folder.h"
#include "slmopt/ir/tensor_names.h"
#include "slmopt/pipeline/stage_report.h"
#include "slmopt/quant/bit_allocation.h"
#include "slmopt/quant/block_quantize.h"
#include "slmopt/quant/calibration.h"
#include "slmopt/quant/int_quantize.h"
#include "slmopt/quant/tensor_quantizer.h"

namespace slmopt::pipeline {
namespace {

std::string preset_names() {
  std::string s;
  for (const auto& p : quant_presets()) s += (s.empty() ? "" : ", ") + std::string(p.name);
  return s;
}

// "int4" → 4 bits; nullopt for anything else.
std::optional<int> int_type_bits(const std::string& type) {
  if (type == "int2") return 2;
  if (type == "int3") return 3;
  if (type == "int4") return 4;
  if (type == "int8") return 8;
  return std::nullopt;
}

struct QuantizeSettings {
  std::string output, format, type, encoder, method, allocate;
  std::vector<std::string> type_for, keep;
  int64_t group_size = 128, gptq_block = 128, gptq_refit = 0, allocate_windows = 8;
  bool symmetric = false, act_order = false, static_groups = false, dry_run = false, json = false;
  bool gptq_head_embed = false;
  double damp = 0.01, max_ppl_increase = -1, max_kl = -1;
  double gptq_asym = 0;
  CalibTextOptions calib;
  std::string imatrix_in, imatrix_out, reference, report;
  EvalTextOptions eval;
  std::optional<RotationOptions> rotation;
};

QuantizeSettings settings_from(const OptionValues& v) {
  QuantizeSettings o;
  o.output = v.str("output");
  o.format = v.str("format");
  o.type = v.str("type");
  o.encoder = v.str("encoder");
  o.method = v.str("method");
  o.allocate = v.str("allocate");
  o.allocate_windows = v.i64("allocate-windows");
  o.type_for = v.list("type-for");
  o.keep = v.list("keep");
  o.group_size = v.i64("group-size");
  o.gptq_block = v.i64("block");
  o.gptq_refit = v.i64("gptq-refit");
  o.gptq_head_embed = v.flag("gptq-head-embed");
  // GPTAQ is the default of --method gptq (it lowered KL at all six presets measured, IQ1_S to Q4_K_M: 3-10 %;
  // slmopt's evaluation of the GGUF files, llama_cpp_quantize_bench compare, 20 kjv-eval windows); the other
  // methods take it only when asked (and then refuse it).
  o.gptq_asym = o.method == "gptq" || v.given("gptq-asym") ? v.f64("gptq-asym") : 0.0;
  o.symmetric = v.flag("sym");
  o.act_order = v.flag("act-order");
  o.static_groups = v.flag("static-groups");
  o.dry_run = v.flag("dry-run");
  o.json = v.flag("json");
  o.damp = v.f64("damp");
  o.max_ppl_increase = v.f64("max-ppl-increase");
  o.max_kl = v.f64("max-kl");
  o.calib = calibration_from_values(v);
  o.imatrix_in = v.str("imatrix-in");
  o.imatrix_out = v.str("imatrix-out");
  o.reference = v.str("reference");
  o.report = v.str("report");
  o.eval = eval_from_values(v, "--eval");
  o.rotation = rotation_from_values(v);
  return o;
}

AccuracyReport make_report(const QuantizeSettings& o, const Model& original, const std::string& type_name,
                           const std::string& method) {
  AccuracyReport report = base_report("quantize", original, o.output, o.format);
  report.method = method;
  report.type = type_name;
  report.settings = {{"encoder", o.encoder}};
  if (!o.type_for.empty()) report.settings["type_for"] = o.type_for;
  if (!o.keep.empty()) report.settings["keep"] = o.keep;
  if (o.calib.given()) report.settings.update(o.calib.to_json());
  if (!o.imatrix_in.empty()) report.settings["imatrix_in"] = o.imatrix_in;
  return report;
}

void add_tensor_results(AccuracyReport& report, const std::vector<TensorQuantResult>& results) {
  for (const auto& r : results) {
    TensorReport t;
    t.name = r.name;
    t.shape = r.shape;
    t.source_type = std::string(dtype_name(r.from));
    t.output_type = std::string(dtype_name(r.to));
    t.relative_error = r.relative_error;
    t.weighted_relative_error = r.weighted_relative_error;
    t.reason = r.reason;
    report.tensors.push_back(t);
  }
}

// Notes that explain the bits per weight: which tensors fell back to another type (and why), and which stayed
// unquantized with their share of the parameters — a "4-bit" small model is ~9 bits/weight when its embedding
// and output head stay in BF16.
// `also_quantized`: tensors quantized outside the report's list (ONNX: the output head's RTN codes);
// `float_reason`: why a matrix the report does not list stayed in float.
void add_type_notes(AccuracyReport& report, const Model& original, const std::set<std::string>& also_quantized,
                    const std::string& float_reason) {
  int64_t total = 0, kept = 0;
  std::vector<std::string> kept_names, fallbacks;
  std::set<std::string> reported;
  for (const auto& t : report.tensors) {
    reported.insert(t.name);
    if (t.reason.find(" instead of ") != std::string::npos) fallbacks.push_back(fmt::format("{} ({})", t.name, t.reason));
  }
  for (const Tensor* t : original.ordered_tensors()) {
    total += t->numel();
    const auto it = std::find_if(report.tensors.begin(), report.tensors.end(),
                                 [&](const TensorReport& r) { return r.name == t->name(); });
    const bool quantized = it != report.tensors.end() && it->output_type != it->source_type &&
                           it->output_type != "F32" && it->output_type != "F16" && it->output_type != "BF16";
    if (quantized || also_quantized.count(t->name()) || t->rank() < 2) continue;  // 1-D tensors (norms, biases) are never quantized and are tiny
    kept += t->numel();
    const std::string why = it == report.tensors.end() ? float_reason : it->reason;
    kept_names.push_back(fmt::format("{} {} ({})", t->name(), dtype_name(t->dtype()), why));
  }
  if (!fallbacks.empty())
    report.notes.push_back(fmt::format("{} tensor(s) fell back to another type: {}", fallbacks.size(),
                                       fmt::join(fallbacks, "; ")));
  if (!kept_names.empty() && total > 0)
    report.notes.push_back(fmt::format("{} matrix tensor(s) stay unquantized, {:.1f} % of the parameters: {}",
                                       kept_names.size(), 100.0 * static_cast<double>(kept) / static_cast<double>(total),
                                       fmt::join(kept_names, "; ")));
}

// GPTQ/AWQ (or RTN on an integer grid): calibration report → accuracy report.
void add_calibration_results(AccuracyReport& report, const CalibrationResult& r, const Model& original,
                             const QuantizeSettings& o) {
  nlohmann::json unscaled = nlohmann::json::object();
  for (const auto& l : r.report.linears) {
    report.layers.push_back({l.name, l.error, l.rtn_error});
    if (!l.awq_note.empty()) unscaled[l.name] = l.awq_note;
    const Tensor& before = original.tensor(l.name);
    TensorReport t;
    t.name = l.name;
    t.shape = before.shape();
    t.source_type = std::string(dtype_name(before.dtype()));
    t.output_type = l.grid;
    t.relative_error = l.weight_error;  // measured when the linear was rounded (the Model may hold only its codes)
    report.tensors.push_back(t);
  }
  if (!unscaled.empty()) report.extra["awq_unscaled"] = unscaled;  // linears AWQ could only round (quant/awq.h)
  report.settings["group_size"] = o.group_size;
  report.settings["symmetric"] = o.symmetric;
  report.settings["damp"] = o.damp;
  report.settings["act_order"] = o.act_order;
  report.settings["gptq_asym"] = o.gptq_asym;
  report.settings["gptq_head_embed"] = o.gptq_head_embed;
  report.settings["static_groups"] = o.static_groups || o.act_order;
  report.settings["calib_windows"] = r.report.windows;
  report.settings["calib_tokens"] = r.report.tokens;
  report.timings["calibration"] = r.report.calibration_seconds;
  report.timings["solver"] = r.report.solver_seconds;
  // The calibration split: forward passes vs XᵀX statistics; GPTQ's factorisations and sweeps inside the solver.
  report.timings["calibration_forward"] = r.report.calibration_seconds - r.report.hessian_seconds;
  report.timings["calibration_hessians"] = r.report.hessian_seconds;
  if (r.report.gptq_seconds > 0) {
    report.timings["gptq"] = r.report.gptq_seconds;
    report.timings["gptq_factor"] = r.report.factor_seconds;
  }
  report.extra["calib_peak_activation_bytes"] = r.report.peak_activation_bytes;
  if (r.report.gptq_seconds > 0)
    report.extra["gptq_solver_gflops_per_s"] = r.report.solver_flops / r.report.gptq_seconds / 1e9;
}

// --allocate size: the budget, the predicted KL of both mixes, and every tensor whose type moved.
void add_allocation(AccuracyReport& report, const AllocationResult& a) {
  report.settings["allocate"] = "size";
  nlohmann::json tensors = nlohmann::json::array();
  std::vector<std::string> moved;
  for (const auto& t : a.tensors) {
    if (t.fixed) continue;
    tensors.push_back({{"name", t.name}, {"preset", dtype_name(t.preset)}, {"chosen", dtype_name(t.chosen)},
                       {"probe_kl", t.probe_kl}});
    if (t.chosen != t.preset) moved.push_back(fmt::format("{} {}→{}", t.name, dtype_name(t.preset), dtype_name(t.chosen)));
  }
  report.extra["allocation"] = {{"budget_bytes", a.budget_bytes}, {"preset_bytes", a.preset_bytes},
                                {"chosen_bytes", a.chosen_bytes}, {"predicted_kl_preset", a.predicted_kl_preset},
                                {"predicted_kl_chosen", a.predicted_kl_chosen}, {"probes", a.probes},
                                {"probe_tokens", a.probe_tokens}, {"tensors", tensors}};
  report.notes.push_back(fmt::format("--allocate size: tensors {} bytes within llama.cpp's preset {} bytes; {} "
                                     "tensor(s) moved from the preset's type: {}", a.chosen_bytes, a.budget_bytes,
                                     moved.size(), moved.empty() ? "none" : fmt::format("{}", fmt::join(moved, "; "))));
}

// Block linears an integer-grid output keeps in float, with the reason (the format cannot hold the shape, or
// --keep): listed in the report's tensors, so add_type_notes names them.
void add_kept_linears(AccuracyReport& report, const IntGridPlan& plan, const Model& original) {
  for (const auto& [name, why] : plan.kept) {
    const Tensor& t = original.tensor(name);
    TensorReport r;
    r.name = name;
    r.shape = t.shape();
    r.source_type = r.output_type = std::string(dtype_name(t.dtype()));
    r.reason = why;
    report.tensors.push_back(r);
  }
}

void run_quantize(PipelineContext& ctx, const OptionValues& values) {
  const auto start = std::chrono::steady_clock::now();
  QuantizeSettings o = settings_from(values);
  const auto method = calibration_method_from_name(o.method);
  if (!method) throw_error(ErrorKind::Usage, "--method '{}': choose rtn, gptq, awq or awq+gptq", o.method);
  const auto int_bits = int_type_bits(o.type);
  const auto preset = int_bits ? std::nullopt : preset_from_name(o.type);
  if (!int_bits && !preset)
    throw_error(ErrorKind::Usage, "--type '{}' is neither a preset ({}) nor an integer grid (int2, int3, int4, int8)",
                o.type, preset_names());
  const auto encoder = encoder_from_name(o.encoder);
  if (!encoder) throw_error(ErrorKind::Usage, "--encoder '{}': choose fast, search, reference or llama", o.encoder);
  if (int_bits && o.format == "gguf")
    throw_error(ErrorKind::Usage, "--type {} is an integer grid: write it with --format hf (GPTQ/AWQ checkpoint) or "
                "--format onnx (MatMulNBits); GGUF takes presets such as q4_0 or q4_k_m", o.type);
  if (preset && o.format != "gguf")
    throw_error(ErrorKind::Usage, "--format {}: preset {} is a GGUF type mix; use --format gguf, or an integer grid "
                "(--type int4) for hf/onnx", o.format, o.type);
  if (o.format != "gguf" && o.format != "hf" && o.format != "onnx")
    throw_error(ErrorKind::Usage, "--format '{}': choose gguf, hf or onnx", o.format);
  if (o.format == "onnx" && int_bits && *int_bits != 4)
    throw_error(ErrorKind::Usage, "--format onnx takes --type int4 here (MatMulNBits); for int8 use 'slmopt compile "
                "--format onnx --type int8'");
  if (o.format == "onnx" && (o.group_size < 16 || (o.group_size & (o.group_size - 1)) != 0))
    throw_error(ErrorKind::Usage, "--group-size {}: MatMulNBits needs a power of two of at least 16", o.group_size);
  // Integer grids come back as a CalibrationResult (codes for the HF/ONNX writers); only GPTQ/AWQ need text:
  // rtn on an integer grid just rounds.
  const bool calibrated = *method != CalibrationMethod::Rtn || int_bits.has_value();
  if (*method != CalibrationMethod::Rtn && !o.calib.given())
    throw_error(ErrorKind::Usage, "--method {} --type {} needs calibration text (--calib or --calib-tokens)", o.method,
                o.type);
  if (!o.imatrix_in.empty() && o.calib.given() && !(calibrated && preset))
    throw_error(ErrorKind::Usage, "--imatrix-in and --calib exclude each other (except with --method gptq/awq on a "
                "GGUF preset, where the matrix guides the tensors calibration leaves to the writer)");
  if (o.rotation && !o.imatrix_in.empty())
    throw_error(ErrorKind::Usage, "--imatrix-in with --rotate: an importance matrix holds statistics of one basis of "
                "the activations; give --calib so it is measured on the rotated model");
  if (!o.imatrix_out.empty() && (!o.calib.given() || calibrated))
    throw_error(ErrorKind::Usage, "--imatrix-out needs --calib with --method rtn and a GGUF preset");
  if (o.allocate != "preset" && o.allocate != "size")
    throw_error(ErrorKind::Usage, "--allocate '{}': choose preset (llama.cpp's type mix) or size (per-tensor types "
                "within the preset's file size)", o.allocate);
  const bool allocate_size = o.allocate == "size";
  if (allocate_size && (!preset || !o.calib.given()))
    throw_error(ErrorKind::Usage, "--allocate size needs a GGUF preset (--type) and calibration text (--calib or "
                "--calib-tokens) to measure each tensor's sensitivity");

  // GGUF branches only run with a preset; the fallback value only keeps the compiler's flow analysis quiet.
  const PresetInfo& gguf_preset = preset_info(preset.value_or(QuantPreset::Q4_K_M));
  TypeSelectionOptions selection;
  selection.preset = gguf_preset.preset;
  for (const auto& spec : o.type_for) selection.overrides.push_back(parse_type_for(spec));
  for (const auto& pattern : o.keep) selection.overrides.push_back(parse_keep(pattern));

  // --rotate: the rotated model (the same function) is what gets quantized and what the tensor errors compare
  // against; evaluations still compare with the checkpoint as loaded.
  RotationReport rotation_report;
  const RotationOptions* rotation = o.rotation ? &*o.rotation : nullptr;
  Model model = rotation ? ctx.rotated_input(*rotation, &rotation_report) : ctx.input();
  const Model original = model;  // shares the tensors; passes replace entries of `model` only
  // A pattern that matches no tensor is a typo (an HF name spelled as GGUF's, a missing wildcard) that would pass
  // silently and change nothing: an error before any work, not a warning lost in a long run's log.
  for (const auto& override : selection.overrides) {
    bool matched = false;
    for (const auto& [name, t] : model.tensors()) matched = matched || override_matches(override.pattern, name);
    if (!matched)
      throw_error(ErrorKind::Usage, "{} '{}' matches no tensor of {} (patterns match Hugging Face names such as "
                  "model.layers.0.mlp.down_proj.weight or GGUF names such as blk.0.ffn_down.weight)",
                  override.dtype ? "--type-for" : "--keep", override.pattern, model.source_path);
  }

  // Integer grids: which block linears the output format holds, decided from shapes and --keep before any
  // calibration (a model the format cannot hold at all is refused here, not after calibrating).
  std::optional<IntGridPlan> int_plan;
  if (int_bits) {
    if (!o.type_for.empty())
      throw_error(ErrorKind::Usage, "--type-for sets GGUF types; an integer grid (--type {}) takes --keep and "
                  "--group-size", o.type);
    std::vector<TypeOverride> keep;
    for (const auto& pattern : o.keep) keep.push_back(parse_keep(pattern));
    const bool awq = *method == CalibrationMethod::Awq || *method == CalibrationMethod::AwqGptq;
    const IntGridOutput output = o.format == "onnx" ? IntGridOutput::OnnxMatMulNBits
                                 : awq              ? IntGridOutput::HfAwq
                                                    : IntGridOutput::HfGptq;
    int_plan = plan_int_grid(model, {*int_bits, o.group_size, o.symmetric}, output, keep);
  }

  if (o.gptq_head_embed) {
    if (*method != CalibrationMethod::Gptq || int_bits || !o.calib.given())
      throw_error(ErrorKind::Usage, "--gptq-head-embed applies to --method gptq with --calib onto a GGUF preset");
    if (model.config.tie_word_embeddings || !model.has(names::kLmHead))
      spdlog::warn("--gptq-head-embed: {} ties its output head to the token embedding; both stay rounded to nearest",
                   model.source_path);
  }

  // Importance matrix (RTN on GGUF presets): from calibration text (shared through the context), or a file.
  std::optional<ImportanceMatrix> importance;
  double calib_seconds = 0;
  // GPTQ/AWQ on a preset whose types need an importance matrix (the i-quants below 4 bits): the tensors the
  // calibration leaves to the writer (embedding, head) and the type selection get one from the same text.
  bool preset_needs_importance = false;
  if (preset && calibrated) {
    TypeSelectionOptions probe = selection;
    probe.has_importance = true;
    for (const auto& c : select_tensor_types(model, probe))
      preset_needs_importance = preset_needs_importance || needs_importance(c.dtype);
  }
  if (o.calib.given() && o.imatrix_in.empty() && (!calibrated || preset_needs_importance || allocate_size)) {
    const auto t = std::chrono::steady_clock::now();
    importance = ctx.importance_matrix(o.calib, rotation);
    calib_seconds = seconds_since(t);
    if (!o.imatrix_out.empty()) save_importance(*importance, o.imatrix_out);
  } else if (!o.imatrix_in.empty()) {
    importance = load_importance(o.imatrix_in, model);
  }

  // --allocate size: each tensor's type chosen within the preset's file size; the choice becomes per-tensor
  // overrides after the user's own (which it never touches), so the writer and GPTQ/AWQ see one type mix.
  std::optional<AllocationResult> allocation;
  std::vector<std::string> allocated;
  if (allocate_size) {
    const auto t = std::chrono::steady_clock::now();
    allocation = allocate_to_size(model, selection, *importance, ctx.calibration_windows(o.calib),
                                  {static_cast<int>(o.allocate_windows), *encoder});
    allocated = allocation->overrides();
    for (const auto& spec : allocated) selection.overrides.push_back(parse_type_for(spec));
    spdlog::info("allocate size: {} probes in {:.1f} s; tensors {} bytes (llama.cpp's {} {}), predicted KL "
                 "{:.5f} (preset mix {:.5f})", allocation->probes, seconds_since(t), allocation->chosen_bytes,
                 gguf_preset.name, allocation->budget_bytes, allocation->predicted_kl_chosen,
                 allocation->predicted_kl_preset);
  }

  // GPTQ/AWQ targets and the writer's types must agree: both see whether a matrix is there.
  selection.has_importance = importance.has_value();
  std::optional<TensorQuantizer> quantizer;
  if (preset) quantizer.emplace(model, selection, importance ? &*importance : nullptr, *encoder);
  if (o.dry_run) {
    if (!quantizer) throw_error(ErrorKind::Usage, "--dry-run prints a GGUF preset's type plan; --type {} has none", o.type);
    for (const auto& c : quantizer->choices())
      std::printf("%-56s %-7s %s\n", c.name.c_str(), std::string(dtype_name(c.dtype)).c_str(), c.reason.c_str());
    return;
  }

  // An HF checkpoint takes codes only: uncalibrated RTN rounds each linear when the writer reaches it, and
  // GPTQ/AWQ keep codes, not F32 copies, of the linears they are done with (memory: write_hf_quantized). Not in a
  // recipe: there an ONNX target of the same grid shares the GPTQ/AWQ run, and it needs the dequantized model.
  const bool codes_only = o.format == "hf" && !ctx.in_recipe;
  std::optional<CalibrationResult> own_calibration;
  const CalibrationResult* calibration = nullptr;
  std::vector<RtnTarget> rtn_on_write;
  if (calibrated && !o.calib.given()) {
    if (codes_only) rtn_on_write = uncalibrated_rtn_targets(model, int_plan->chooser());
    else calibration = &own_calibration.emplace(quantize_uncalibrated_rtn(model, int_plan->chooser()));
  } else if (calibrated) {
    // Everything besides the windows that decides the result: targets with equal keys share one run.
    const std::string key =
        fmt::format("{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}", o.method, int_bits ? std::to_string(*int_bits) : o.type,
                    o.group_size, o.symmetric, o.damp, o.act_order, o.static_groups, o.gptq_block, o.gptq_refit,
                    int_bits ? "" : gguf_preset.name, fmt::join(o.type_for, ","), fmt::join(o.keep, ","),
                    o.imatrix_in)  // a given matrix changes the preset's types, hence the targets
        + fmt::format("|asym{}|head-embed{}", o.gptq_asym, o.gptq_head_embed) + (allocated.empty() ? "" : "|alloc:" + fmt::format("{}", fmt::join(allocated, ",")));
    const std::string shared_key = key + (codes_only ? "|codes-only" : "");
    const auto& shared = ctx.calibrated(shared_key, o.calib, [&](const Model& input, const auto& windows) {
      slmopt::CalibrationOptions c;
      c.method = *method;
      c.gptq.damp_percent = o.damp;
      c.gptq.act_order = o.act_order;
      c.gptq.static_groups = o.static_groups || o.act_order;
      c.gptq.block_size = o.gptq_block;
      c.gptq_refits = static_cast<int>(o.gptq_refit);
      c.gptq_asym = o.gptq_asym;
      c.keep_dequantized = !codes_only;
      c.embedding_and_head = o.gptq_head_embed;
      CalibratedModel out{{}, input};
      const TargetChooser targets = int_plan ? int_plan->chooser() : gguf_preset_targets(out.model, selection);
      spdlog::info("{}: calibrating on {} windows of {} tokens, block by block", o.method, windows.size(),
                   o.calib.seqlen);
      out.result = quantize_calibrated(out.model, windows, targets, c);
      return out;
    }, rotation);
    calibration = &shared.result;
    model = shared.model;
  }

  const auto write_start = std::chrono::steady_clock::now();
  IntQuantizedWeights onnx_codes;
  if (o.format == "gguf") {
    size_t two_d = 0;
    for (const Tensor* t : model.ordered_tensors()) two_d += t->rank() >= 2;
    Progress progress("writing " + std::string(gguf_preset.name), two_d, true);
    GgufWriteOptions gguf;
    gguf.file_type = static_cast<LlamaFileType>(gguf_preset.gguf_file_type);
    gguf.choose_dtype = [&](const std::string& name, const Tensor& t) {
      const DType target = quantizer->target(name);
      if (!traits(target).is_quantized) quantizer->record_conversion(t, target);
      progress.advance();
      return target;
    };
    gguf.encode = [&](const Tensor& t, DType dtype) { return quantizer->encode(t, dtype); };
    gguf.encode_streamed = [&](const Tensor& t, DType dtype, const std::function<void(const uint8_t*, size_t)>& write) {
      quantizer->encode_streamed(t, dtype, write);
    };
    write_gguf(model, o.output, gguf);
    progress.finish();
  } else if (o.format == "hf") {
    HfQuantizedWriteOptions w;
    w.format = (*method == CalibrationMethod::Awq || *method == CalibrationMethod::AwqGptq) ? HfQuantFormat::Awq
                                                                                          : HfQuantFormat::Gptq;
    w.desc_act = o.act_order;
    w.damp_percent = o.damp;
    w.static_groups = o.static_groups || o.act_order;
    auto grid_of = [](const IntGridSpec& spec, int64_t rows, int64_t cols) {
      return HfIntWeight{spec.bits, spec.group_columns(cols), spec.symmetric, rows, cols, {}, {}, {}};
    };
    HfIntWeightSource source;
    std::map<std::string, LinearReport> rtn_reports;
    double rtn_seconds = 0;
    if (calibration) {
      for (const auto& [name, q] : calibration->int_weights) source.grids[name] = grid_of(q.spec, q.rows, q.cols);
      source.make = [&](const std::string& name) { return calibration->int_weights.at(name).to_hf(); };
    } else {
      std::map<std::string, IntGridSpec> specs;
      for (const RtnTarget& t : rtn_on_write) {
        specs.emplace(t.name, t.spec);
        source.grids[t.name] = grid_of(t.spec, model.tensor(t.name).rows(), model.tensor(t.name).cols());
      }
      source.make = [&, specs](const std::string& name) {
        const auto t0 = std::chrono::steady_clock::now();
        LinearReport rep;
        HfIntWeight codes = quantize_rtn_linear(model.tensor(name), specs.at(name), rep).to_hf();
        rtn_reports[name] = std::move(rep);
        rtn_seconds += seconds_since(t0);
        return codes;
      };
    }
    write_hf_quantized(model, source, o.output, w);
    if (!calibration) {  // the reports in block order, as quantize_uncalibrated_rtn gives them
      CalibrationResult& r = own_calibration.emplace();
      for (const RtnTarget& t : rtn_on_write) r.report.linears.push_back(std::move(rtn_reports.at(t.name)));
      r.report.solver_seconds = rtn_seconds;
      calibration = &r;
    }
  } else {
    // Calibration quantizes the block linears; an untied output head gets RTN on the same grid.
    // Linears the plan kept (and a head matched by --keep) stay float MatMuls.
    onnx_codes = quantize_linear_weights_rtn(model, {4, o.group_size, o.symmetric});
    for (const auto& [name, why] : int_plan->kept) onnx_codes.erase(name);
    for (const auto& pattern : o.keep)
      if (model.has(names::kLmHead) && override_matches(pattern, names::kLmHead)) onnx_codes.erase(names::kLmHead);
    for (auto& [name, w] : calibration->onnx_weights()) onnx_codes[name] = std::move(w);
    OnnxExportOptions onnx;
    onnx.weight_type = *int_bits == 4 ? OnnxWeightType::Int4 : OnnxWeightType::Int8;
    onnx.quantized = &onnx_codes;
    onnx.float_unquantized_linears = true;
    export_onnx_folder(model, o.output, onnx);
    o.output = onnx_folder_target(o.output, onnx.weight_type).folder;  // the report names (and sits in) the folder
  }
  // Rounding on demand ran inside the writer: its time is the solver's (calibration->report), not the write's.
  const double write_seconds =
      seconds_since(write_start) - (rtn_on_write.empty() ? 0.0 : calibration->report.solver_seconds);

  const std::string method_name = calibrated ? o.method : (importance ? "imatrix-rtn" : "rtn");
  AccuracyReport report = make_report(o, original, preset ? std::string(gguf_preset.name) : o.type, method_name);
  if (rotation) add_rotation_notes(report, *rotation, rotation_report);
  if (quantizer) add_tensor_results(report, quantizer->results());
  if (calibration) add_calibration_results(report, *calibration, original, o);
  if (int_plan) add_kept_linears(report, *int_plan, original);
  std::set<std::string> onnx_quantized;
  for (const auto& [name, codes] : onnx_codes) onnx_quantized.insert(name);
  add_type_notes(report, original, onnx_quantized,
                 o.format == "onnx" ? "an embedding gather: the ONNX export keeps it in float"
                                    : "not a block linear: GPTQ/AWQ checkpoints keep it in float");
  // ONNX Runtime computes with the codes written; slmopt evaluates the same dequantized weights (the consumer
  // tests check ORT agrees). GGUF and HF outputs are read back from disk.
  // A GGUF output is read back only to evaluate it: its statistics come from the header (an 8B Q4_K_M read back
  // whole would take the peak RSS from ~140 MB to ~750 MB).
  // An HF checkpoint is likewise read back only to evaluate it (dequantized, it is 4 bytes per weight): its
  // tensors have the shapes of `model`, which holds the same names (quantized linears as placeholders).
  std::optional<Model> written;
  if (o.format == "onnx") written = with_dequantized_weights(model, onnx_codes);
  else if (o.eval.given()) written = load_model(o.output);
  if (o.format == "gguf") fill_output_stats_from_gguf_header(report);
  else fill_output_stats(report, written ? *written : model);
  // HF/ONNX readers hand back dequantized floats: size on disk is the honest measure there.
  if (o.format != "gguf" && report.parameters > 0)
    report.bits_per_weight = 8.0 * static_cast<double>(report.output_bytes) / static_cast<double>(report.parameters);
  if (calib_seconds > 0) report.timings["calibration"] = calib_seconds;
  if (allocation) add_allocation(report, *allocation);
  report.timings["write"] = write_seconds;

  ReportTail tail = report_tail_from_values(values);
  evaluate_and_finish(ctx, report, written ? &*written : nullptr, tail, start);
}

}  // namespace

StageInfo quantize_stage() {
  StageInfo s;
  s.name = "quantize";
  s.summary = "Quantize weights to a GGUF type or llama.cpp-style mix, with an accuracy report";
  s.footer = std::string("Importance: --calib runs the model over calibration windows and weights each column's "
                         "squared error by its mean squared input activation.\n") + kEvalProtocolHelp;
  s.options = {
      positional_option("MODEL", "Hugging Face folder, .gguf or .onnx file"),
      string_option("output", "", "Output: .gguf file, HF checkpoint folder, or ONNX export folder (DIR or "
                    "DIR/onnx/NAME.onnx); not needed with --dry-run")
          .with_flags("-o,--output").mandatory_unless("dry-run").as_path().cli_only(),
      string_option("format", "gguf", "gguf (default, or from the output name: .gguf, .onnx; presets), hf (GPTQ/AWQ "
                    "checkpoint; intN) or onnx (int4)"),
      string_option("type", "q4_k_m", "GGUF preset: " + preset_names() + " (default Q4_K_M); or an integer grid "
                    "int2, int3, int4, int8 for --format hf/onnx"),
      string_option("method", "rtn", "rtn (default), gptq, awq or awq+gptq; gptq/awq calibrate block by block on "
                    "--calib and round onto the preset's GGUF grids or the integer grid"),
      int_option("group-size", 128, "intN: input columns per scale (32, 64, 128 (default), or -1 for whole rows)"),
      flag_option("sym", "intN: symmetric grid (default asymmetric, with zero points)"),
      float_option("damp", 0.01, "GPTQ: dampening as a fraction of mean diag(H) (default 0.01; raised x10 "
                   "automatically when Cholesky fails)").with_check(OptionCheck::Positive),
      flag_option("act-order", "GPTQ: process columns by descending Hessian diagonal (static groups)"),
      flag_option("static-groups", "GPTQ: fix every group's grid before the sweep"),
      int_option("block", 128, "GPTQ: columns per lazy batch update (default 128)").with_check(OptionCheck::Positive),
      int_option("gptq-refit", 0, "GPTQ onto Q4_0/Q5_0/Q8_0/IQ4_NL: rounds of re-fitting the block scales to the "
                 "chosen codes and rounding again, kept while they lower each linear's output error (default 0)"),
      flag_option("gptq-head-embed", "GPTQ onto a GGUF preset: round the output head (on the final norm's outputs) "
                  "and the token embedding (weighted by the linears that read the residual stream) with GPTQ too, "
                  "instead of to nearest; untied models"),
      float_option("gptq-asym", 0.25, "GPTQ: GPTAQ's asymmetric calibration with this alpha (default 0.25 as "
                   "published, for --method gptq; 0 = off, the plain GPTQ recipe): fit each linear to the float "
                   "model's output on the float model's inputs, undoing the error of the blocks already quantized "
                   "(runs the float blocks alongside)")
          .with_check(OptionCheck::NonNegative),
      string_option("allocate", "preset", "preset (default: llama.cpp's type per tensor) or size: choose each "
                    "tensor's type by measured sensitivity so the tensors take no more bytes than llama.cpp's file "
                    "for the preset (needs --calib)"),
      int_option("allocate-windows", 8, "--allocate size: calibration windows each sensitivity probe runs on "
                 "(default 8)").with_check(OptionCheck::Positive),
      list_option("type-for", "PATTERN=TYPE: store matching tensors as TYPE (glob on HF or GGUF names, or re:REGEX); "
                  "repeatable, first match wins"),
      list_option("keep", "PATTERN: leave matching tensors in their current type; repeatable"),
      string_option("encoder", "fast", "Block encoder: fast (default: llama.cpp's blocks polished, never worse on "
                    "weighted error, about its speed), search (exhaustive: lowest error, several times slower), "
                    "reference (llama.cpp's quantize_row_*_ref, bit for bit), llama (llama.cpp's own)"),
  };
  for (auto& spec : calibration_option_specs(128, "Calibration windows (default 128)", 0,
                                             "Tokens per calibration window (default: min(model context, 512))",
                                             "Seed for choosing calibration windows (default 0)"))
    s.options.push_back(spec);
  for (auto& spec : rotation_option_specs()) s.options.push_back(spec);
  s.options.push_back(string_option("imatrix-in", "", "Importance matrix saved by --imatrix-out")
                          .with_check(OptionCheck::ExistingFile).as_path());
  s.options.push_back(string_option("imatrix-out", "", "Save the importance matrix computed from --calib").as_path());
  for (auto& spec : eval_option_specs("--eval")) s.options.push_back(spec);
  s.options.push_back(string_option("reference", "", "Evaluate against this model instead of the input (default: "
                                    "the input; a recipe's targets compare against the recipe's model)")
                          .with_check(OptionCheck::ExistingPath).as_path().cli_only());
  s.options.push_back(string_option("report", "", "Report path (default: beside the output, OUT.report.{json,md})")
                          .as_path().cli_only());
  s.options.push_back(float_option("max-ppl-increase", -1, "Exit with code 6 when perplexity rises by more than PCT "
                                   "percent (needs --eval)").with_check(OptionCheck::NonNegative).cli_only());
  s.options.push_back(float_option("max-kl", -1, "Exit with code 6 when mean KL(original||output) exceeds X (needs "
                                   "--eval)").with_check(OptionCheck::NonNegative).cli_only());
  s.options.push_back(flag_option("dry-run", "Print the type chosen for each tensor and stop").cli_only());
  s.options.push_back(flag_option("json", "Print the report as JSON on stdout").cli_only());
  s.run = run_quantize;
  return s;
}

}  // namespace slmopt::pipeline
