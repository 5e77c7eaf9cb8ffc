// The prune stage: structured pruning of attention heads / KV groups, FFN channels and whole layers, chosen by
// importance scores measured on calibration windows (prune/importance.h), cut physically (prune/structured.h),
// optionally repaired by least-squares refits of the output projections (prune/refit.h), with the same accuracy
// report as quantize. Inside a recipe the pruned model stays in memory as the next stage's input (written only
// when the stage names an output), and the context drops calibration results measured on the old weights.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "prune_output_check.h"
#include "stages.h"
#include "slmopt/core/atomic_file.h"
#include "slmopt/core/error.h"
#include "slmopt/core/log.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/distill/student.h"
#include "slmopt/eval/perplexity.h"
#include "slmopt/io/gguf.h"
#include "slmopt/io/hf.h"
#include "slmopt/io/model_loader.h"
#include "slmopt/io/onnx_folder.h"
#include "slmopt/pipeline/stage_report.h"
#include "slmopt/prune/importance.h"
#include "slmopt/prune/refit.h"
#include "slmopt/prune/structured.h"

namespace slmopt::pipeline {
namespace {

struct PruneSettings {
  std::string output, format;
  CalibTextOptions calib;
  std::string importance, scores_in, scores_out;
  double heads_ratio = 0;
  int64_t heads_per_layer = 0;
  std::string layer_heads, head_unit;
  double ffn_ratio = 0;
  std::string layer_ffn;
  int64_t ffn_multiple = 1;
  bool per_layer_counts = false;
  std::string keep_layers, drop_layers;
  bool refit = false;
  double ridge = 0;
  EvalTextOptions eval;
  std::string reference, report;
  double max_ppl_increase = -1, max_kl = -1;
  bool json = false;

  bool cuts_something() const {
    return heads_ratio > 0 || heads_per_layer > 0 || !layer_heads.empty() || ffn_ratio > 0 || !layer_ffn.empty() ||
           !keep_layers.empty() || !drop_layers.empty();
  }
};

PruneSettings settings_from(const OptionValues& v) {
  PruneSettings o;
  o.output = v.str("output");
  o.format = v.str("format");
  o.calib = calibration_from_values(v);
  o.importance = v.str("importance");
  o.scores_in = v.str("scores-in");
  o.scores_out = v.str("scores");
  o.heads_ratio = v.f64("heads-ratio");
  o.heads_per_layer = v.i64("heads-per-layer");
  o.layer_heads = v.str("layer-heads");
  o.head_unit = v.str("head-unit");
  o.ffn_ratio = v.f64("ffn-ratio");
  o.layer_ffn = v.str("layer-ffn");
  o.ffn_multiple = v.i64("ffn-multiple");
  o.per_layer_counts = v.flag("per-layer-counts");
  o.keep_layers = v.str("keep-layers");
  o.drop_layers = v.str("drop-layers");
  o.refit = v.flag("refit");
  o.ridge = v.f64("ridge");
  o.eval = eval_from_values(v, "--eval");
  o.reference = v.str("reference");
  o.report = v.str("report");
  o.max_ppl_increase = v.f64("max-ppl-increase");
  o.max_kl = v.f64("max-kl");
  o.json = v.flag("json");
  return o;
}

// "a,b,c" → one count per layer; Error(Usage) naming the option for anything else.
std::vector<int64_t> parse_count_list(const std::string& option, const std::string& text, int64_t layers) {
  std::vector<int64_t> counts;
  size_t begin = 0;
  while (begin <= text.size()) {
    const size_t end = std::min(text.find(',', begin), text.size());
    const std::string item = text.substr(begin, end - begin);
    char* rest = nullptr;
    const long long value = item.empty() ? 0 : std::strtoll(item.c_str(), &rest, 10);
    if (item.empty() || *rest != '\0' || value < 1)
      throw_error(ErrorKind::Usage, "{} '{}': expected positive counts separated by commas", option, text);
    counts.push_back(value);
    begin = end + 1;
  }
  if (static_cast<int64_t>(counts.size()) != layers)
    throw_error(ErrorKind::Usage, "{} '{}': {} counts for a model with {} layers", option, text, counts.size(), layers);
  return counts;
}

std::vector<int64_t> layer_list(const std::string& option, const std::string& text, int64_t layers) {
  try {
    return parse_layer_list(text, layers);
  } catch (const Error& e) {
    throw Error(ErrorKind::Usage, option + ": " + e.what());
  }
}

PruneSpec make_spec(const PruneSettings& o, const Config& config) {
  PruneSpec spec;
  spec.head_ratio = o.heads_ratio;
  if (o.heads_per_layer > 0) spec.heads_per_layer = o.heads_per_layer;
  if (!o.layer_heads.empty()) spec.layer_heads = parse_count_list("--layer-heads", o.layer_heads, config.num_layers);
  if (o.head_unit == "query") spec.head_unit = HeadUnit::QueryHeads;
  else if (o.head_unit == "kv-group") spec.head_unit = HeadUnit::KvGroups;
  else throw_error(ErrorKind::Usage, "--head-unit '{}': choose query or kv-group", o.head_unit);
  spec.ffn_ratio = o.ffn_ratio;
  if (!o.layer_ffn.empty()) spec.layer_ffn = parse_count_list("--layer-ffn", o.layer_ffn, config.num_layers);
  spec.ffn_multiple = o.ffn_multiple;
  spec.counts = o.per_layer_counts ? CountPolicy::PerLayer : CountPolicy::SameEveryLayer;
  if (!o.keep_layers.empty()) spec.keep_layers = layer_list("--keep-layers", o.keep_layers, config.num_layers);
  if (!o.drop_layers.empty()) spec.drop_layers = layer_list("--drop-layers", o.drop_layers, config.num_layers);
  return spec;
}

void print_scores_summary(const ImportanceScores& scores) {
  const std::string method = scores.method == ImportanceMethod::Mixed
                                 ? std::string("mixed: heads by ") + importance_method_name(scores.head_method) +
                                       ", FFN channels by activation"
                                 : importance_method_name(scores.method);
  std::printf("importance (%s) over %lld windows, %lld tokens%s\n", method.c_str(), (long long)scores.windows,
              (long long)scores.tokens,
              scores.head_method == ImportanceMethod::MaskedLoss
                  ? (" (base loss " + std::to_string(scores.base_loss) + " nats/token)").c_str()
                  : "");
  for (size_t l = 0; l < scores.layers.size(); ++l) {
    const auto& layer = scores.layers[l];
    std::printf("layer %zu heads:", l);
    for (double s : layer.heads) std::printf(" %.4g", s);
    double ffn_sum = 0;
    for (double s : layer.ffn) ffn_sum += s;
    std::printf("  | ffn mean %.4g over %zu channels\n", layer.ffn.empty() ? 0.0 : ffn_sum / layer.ffn.size(),
                layer.ffn.size());
  }
}

ImportanceScores zero_scores(const Config& config) {
  ImportanceScores scores;
  for (int64_t l = 0; l < config.num_layers; ++l)
    scores.layers.push_back({std::vector<double>(static_cast<size_t>(config.heads(l)), 0.0),
                             std::vector<double>(static_cast<size_t>(config.kv_heads(l)), 0.0),
                             std::vector<double>(static_cast<size_t>(config.ffn(l)), 0.0)});
  return scores;
}

// "0-3,5,7-9": a sorted index list in a line instead of one number per line.
std::string index_ranges(const std::vector<int64_t>& v) {
  std::string out;
  for (size_t i = 0; i < v.size();) {
    size_t j = i;
    while (j + 1 < v.size() && v[j + 1] == v[j] + 1) ++j;
    out += (out.empty() ? "" : ",") + (j == i ? std::to_string(v[i]) : fmt::format("{}-{}", v[i], v[j]));
    i = j + 1;
  }
  return out;
}

// What each output layer kept, with the index lists as ranges (the full plan as JSON arrays runs to hundreds of
// lines for one small model).
nlohmann::json compact_plan_json(const PrunePlan& plan, const Config& config) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& k : plan.layers)
    layers.push_back({{"source_layer", k.source_layer},
                      {"heads", fmt::format("{} of {}: {}", k.heads.size(), config.heads(k.source_layer), index_ranges(k.heads))},
                      {"kv_heads", fmt::format("{} of {}: {}", k.kv_heads.size(), config.kv_heads(k.source_layer), index_ranges(k.kv_heads))},
                      {"ffn", fmt::format("{} of {}: {}", k.ffn.size(), config.ffn(k.source_layer), index_ranges(k.ffn))}});
  return {{"layers", std::move(layers)}};
}

ReportTable plan_table(const PrunePlan& plan, const Config& config, const RefitReport* refit) {
  ReportTable t;
  t.title = "What each layer kept";
  t.header = {"layer", "from layer", "query heads", "KV heads", "FFN channels", "heads removed"};
  if (refit) t.header.push_back("refit error before → after");
  for (size_t i = 0; i < plan.layers.size(); ++i) {
    const LayerKeep& k = plan.layers[i];
    std::vector<int64_t> removed;
    for (int64_t h = 0; h < config.heads(k.source_layer); ++h)
      if (!std::binary_search(k.heads.begin(), k.heads.end(), h)) removed.push_back(h);
    std::vector<std::string> row = {std::to_string(i), std::to_string(k.source_layer),
                                    fmt::format("{} / {}", k.heads.size(), config.heads(k.source_layer)),
                                    fmt::format("{} / {}", k.kv_heads.size(), config.kv_heads(k.source_layer)),
                                    fmt::format("{} / {}", k.ffn.size(), config.ffn(k.source_layer)),
                                    removed.empty() ? "none" : index_ranges(removed)};
    if (refit) {
      std::string cell;
      for (const auto& s : refit->sublayers)
        if (s.layer == static_cast<int64_t>(i))
          cell += fmt::format("{}{}: {:.4f} → {:.4f}", cell.empty() ? "" : "; ",
                              s.weight.substr(s.weight.find_last_of('.', s.weight.size() - 8) + 1), s.error_before,
                              s.error_after);
      row.push_back(cell);
    }
    t.rows.push_back(std::move(row));
  }
  return t;
}

// The cut as given: only the options that were set, so the report says what was asked for.
nlohmann::json cut_settings(const PruneSettings& o, const ImportanceScores& scores) {
  nlohmann::json j = {{"importance", importance_method_name(scores.method)}};
  if (scores.method == ImportanceMethod::Mixed) j["importance_heads"] = importance_method_name(scores.head_method);
  if (!o.scores_in.empty()) j["scores_in"] = o.scores_in;
  if (o.heads_ratio > 0) j["heads_ratio"] = o.heads_ratio;
  if (o.heads_per_layer > 0) j["heads_per_layer"] = o.heads_per_layer;
  if (!o.layer_heads.empty()) j["layer_heads"] = o.layer_heads;
  j["head_unit"] = o.head_unit;
  if (o.ffn_ratio > 0) j["ffn_ratio"] = o.ffn_ratio;
  if (!o.layer_ffn.empty()) j["layer_ffn"] = o.layer_ffn;
  if (o.ffn_multiple > 1) j["ffn_multiple"] = o.ffn_multiple;
  if (o.per_layer_counts) j["per_layer_counts"] = true;
  if (!o.keep_layers.empty()) j["keep_layers"] = o.keep_layers;
  if (!o.drop_layers.empty()) j["drop_layers"] = o.drop_layers;
  j["refit"] = o.refit;
  if (o.refit) j["ridge"] = o.ridge;
  return j;
}

[[noreturn]] void per_layer_counts_error(const std::string& format) {
  throw_error(ErrorKind::Usage, "--format {}: per-layer head/FFN counts (--per-layer-counts, or different values in "
              "--layer-heads/--layer-ffn) cannot be expressed by {}; use --format gguf",
              format, format == "hf" ? "Hugging Face configs" : "the ONNX graph");
}

void write_output(const Model& pruned, const PruneSettings& o) {
  if (o.format == "hf") {
    write_hf_model(pruned, o.output);
  } else if (o.format == "gguf") {
    write_gguf(pruned, o.output);  // each tensor keeps its type (F32/F16/BF16; norms F32)
  } else {
    OnnxExportOptions options;
    options.weight_type = OnnxWeightType::F32;
    export_onnx_folder(pruned, o.output, options);
  }
}

void run_prune(PipelineContext& ctx, const OptionValues& values) {
  const auto start = std::chrono::steady_clock::now();
  PruneSettings o = settings_from(values);
  if (o.format != "hf" && o.format != "gguf" && o.format != "onnx")
    throw_error(ErrorKind::Usage, "--format '{}': choose hf, gguf or onnx", o.format);
  const auto method = parse_importance_method(o.importance);
  if (!method) throw_error(ErrorKind::Usage, "--importance '{}': choose mixed, loss, activation or random", o.importance);
  if (!o.scores_in.empty() && !o.scores_out.empty())
    throw_error(ErrorKind::Usage, "--scores-in and --scores exclude each other (the scores are already saved)");
  if (!o.cuts_something() && o.scores_out.empty())
    throw_error(ErrorKind::Usage, "nothing to prune: give --heads-ratio, --heads-per-layer, --layer-heads, --ffn-ratio, "
                "--layer-ffn, --keep-layers or --drop-layers (or --scores FILE to only save the scores)");
  // A recipe keeps the pruned model in memory for the next stage; a subcommand must write it.
  if (o.cuts_something() && o.output.empty() && !ctx.in_recipe)
    throw_error(ErrorKind::Usage, "-o/--output is required to prune");
  if (!o.cuts_something() && (o.refit || !o.output.empty()))
    throw_error(ErrorKind::Usage, "{} needs a cut option (--heads-ratio, --ffn-ratio, ...)",
                o.refit ? "--refit" : "-o/--output");

  const Model model = ctx.input();  // a copy sharing the tensors: set_input() below replaces the context's
  const PruneSpec spec = o.cuts_something() ? make_spec(o, model.config) : PruneSpec{};
  // Refuse what the output format cannot hold before the (slow) importance run; the exact check follows the plan.
  const auto differs = [](const std::vector<int64_t>& v) { return std::adjacent_find(v.begin(), v.end(), std::not_equal_to<>()) != v.end(); };
  const bool writes = !o.output.empty();
  if (writes && o.format != "gguf" && (o.per_layer_counts || differs(spec.layer_heads) || differs(spec.layer_ffn)))
    per_layer_counts_error(o.format);
  if (writes && o.cuts_something()) check_prune_output(model.config, spec, o.format, o.output);

  // The cut options alone decide the counts, so a cut that is invalid (or removes nothing) fails here, before the
  // calibration run, through the planner itself (all-zero scores).
  if (o.cuts_something()) (void)plan_pruning(model.config, zero_scores(model.config), spec);

  // Calibration windows: needed to measure importance and to refit.
  const bool need_windows = o.scores_in.empty() || o.refit;
  if (need_windows && !o.calib.given())
    throw_error(ErrorKind::Usage, "--calib (or --calib-tokens) is required to {}",
                o.scores_in.empty() ? "measure importance (or give --scores-in FILE)" : "refit (--refit)");
  static const std::vector<std::vector<int32_t>> kNoWindows;
  const auto& windows = need_windows ? ctx.calibration_windows(o.calib) : kNoWindows;
  const ModelRunner original(model);

  const auto score_start = std::chrono::steady_clock::now();
  ImportanceScores scores;
  if (!o.scores_in.empty()) {
    nlohmann::json document;
    try {
      document = nlohmann::json::parse(read_text_file(o.scores_in));
    } catch (const nlohmann::json::exception& e) {
      throw_error(ErrorKind::BadInput, "--scores-in {}: not JSON ({})", o.scores_in, e.what());
    }
    scores = importance_from_json(document, o.scores_in);
  } else {
    spdlog::info("measuring {} importance over {} windows of {} tokens", o.importance, windows.size(), o.calib.seqlen);
    ImportanceOptions options;
    options.method = *method;
    options.seed = o.calib.seed;
    options.progress = !ctx.in_recipe;
    scores = compute_importance(original, windows, options);
    if (!scores.head_note.empty()) spdlog::info("{}", scores.head_note);
  }
  const double score_seconds = seconds_since(score_start);
  if (!o.scores_out.empty()) write_file_atomic(o.scores_out, importance_to_json(scores).dump(2) + "\n");
  if (!o.cuts_something()) {
    if (ctx.in_recipe) return;
    if (o.json) print_json(importance_to_json(scores));
    else {
      print_scores_summary(scores);
      std::printf("wrote %s\n", o.scores_out.c_str());
    }
    return;
  }

  const PrunePlan plan = plan_pruning(model.config, scores, spec);
  Model pruned = model;
  apply_prune_plan(pruned, plan);
  if (writes && o.format != "gguf" && !pruned.config.uniform_layers()) per_layer_counts_error(o.format);

  const auto refit_start = std::chrono::steady_clock::now();
  std::optional<RefitReport> refit;
  if (o.refit) {
    spdlog::info("refitting output projections over {} windows (ridge {})", windows.size(), o.ridge);
    refit = refit_pruned_model(original, pruned, plan, windows, {o.ridge});
  }
  const double refit_seconds = seconds_since(refit_start);

  if (!writes) {  // inside a recipe: the pruned model is the next stage's input
    spdlog::info("pruned in memory: parameters {} -> {}", model.parameter_count(), pruned.parameter_count());
    ctx.set_input(std::move(pruned), Invalidates::Weights);
    return;
  }

  const auto write_start = std::chrono::steady_clock::now();
  write_output(pruned, o);
  if (o.format == "onnx") o.output = onnx_folder_target(o.output, OnnxWeightType::F32).folder;  // reports name the folder
  const double write_seconds = seconds_since(write_start);

  AccuracyReport report = base_report("prune", model, o.output, o.format);
  report.method = "prune";
  report.type = o.format == "onnx" ? "f32" : "keep";
  report.settings = cut_settings(o, scores);
  if (o.calib.given()) report.settings.update(o.calib.to_json());
  report.extra["importance"] = importance_method_name(scores.method);
  if (scores.method == ImportanceMethod::Mixed)
    report.extra["importance_heads"] = importance_method_name(scores.head_method);
  report.extra["parameters_before"] = model.parameter_count();
  report.extra["parameters_after"] = pruned.parameter_count();
  report.extra["plan"] = compact_plan_json(plan, model.config);
  if (refit) report.extra["refit"] = refit_report_to_json(*refit);
  report.tables.push_back(plan_table(plan, model.config, refit ? &*refit : nullptr));
  fill_output_stats(report, pruned);
  if (o.format == "onnx") {
    report.bits_per_weight = 32.0;  // the F32 export widens BF16/F16 weights
    if (report.input_bits_per_weight < 31.5)
      report.notes.push_back(fmt::format(
          "the ONNX export stores F32 weights and the input {:.1f} bits/weight: on disk the output is {}, while "
          "its parameters are {:.3f}x the input's",
          report.input_bits_per_weight, size_change_text(report.input_bytes, report.output_bytes),
          static_cast<double>(pruned.parameter_count()) / static_cast<double>(std::max<int64_t>(model.parameter_count(), 1))));
  }
  if (!scores.head_note.empty()) report.notes.push_back(scores.head_note);
  report.timings["importance"] = score_seconds;
  report.timings["refit"] = refit_seconds;
  report.timings["write"] = write_seconds;
  if (!o.json && !ctx.in_recipe)
    std::printf("parameters %lld -> %lld (%.1f %% removed)\n", (long long)model.parameter_count(),
                (long long)pruned.parameter_count(),
                100.0 * (1.0 - static_cast<double>(pruned.parameter_count()) /
                                   static_cast<double>(std::max<int64_t>(model.parameter_count(), 1))));

  if (ctx.in_recipe) ctx.set_input(pruned, Invalidates::Weights);
  ReportTail tail = report_tail_from_values(values);
  evaluate_and_finish(ctx, report, &pruned, tail, start);
}

}  // namespace

StageInfo prune_stage() {
  StageInfo s;
  s.name = "prune";
  s.summary = "Structured pruning of heads, KV groups, FFN channels and layers, with optional refit and an accuracy report";
  s.footer = std::string("Calibration defaults for prune: --calib-samples 32, --calib-seqlen 128. At most one of "
                         "--heads-ratio/--heads-per-layer/--layer-heads, one of --ffn-ratio/--layer-ffn, one of "
                         "--keep-layers/--drop-layers.\n") + kEvalProtocolHelp;
  s.invalidates = Invalidates::Weights;
  s.options = {
      positional_option("MODEL", "Hugging Face folder, .gguf or .onnx file"),
      string_option("output", "", "Output folder (hf, onnx export) or .gguf file; not needed with --scores alone")
          .with_flags("-o,--output").as_path().cli_only(),
      string_option("format", "hf", "Output format (default hf, or from the output name: .gguf, .onnx): hf (same "
                    "counts in every layer), gguf (per-layer counts "
                    "allowed, tensor types kept), onnx (F32)"),
  };
  for (auto& spec : calibration_option_specs(32, "Calibration windows (default 32)", 128,
                                             "Tokens per calibration window (default 128)",
                                             "Seed for choosing calibration windows and for --importance random (default 0)"))
    s.options.push_back(spec);
  const std::vector<OptionSpec> rest = {
      string_option("importance", "mixed", "Importance method: mixed (default; FFN channels by activation, heads "
                    "and KV groups by masked loss when affordable, else by activation), loss (loss increase when each "
                    "unit alone is masked: one partial forward per head and FFN channel, slow), activation (mean norm "
                    "of the unit's residual contribution: one forward pass), random (baseline, --seed)"),
      string_option("scores-in", "", "Reuse importance scores saved by --scores (no calibration run)")
          .with_check(OptionCheck::ExistingFile).as_path(),
      string_option("scores", "", "Save the importance scores as JSON; without cut options, only measure and save them")
          .as_path(),
      float_option("heads-ratio", 0, "Fraction of query heads to remove, in [0, 1)").with_check(OptionCheck::Range, 0, 1),
      int_option("heads-per-layer", 0, "Query heads to keep in every layer").with_check(OptionCheck::Positive),
      string_option("layer-heads", "", "a,b,...: query heads to keep in each layer (one count per layer)"),
      string_option("head-unit", "query", "query (default: remove query heads inside each KV group) or kv-group "
                    "(remove whole KV groups with their query heads and K/V rows)"),
      float_option("ffn-ratio", 0, "Fraction of FFN channels to remove, in [0, 1)").with_check(OptionCheck::Range, 0, 1),
      string_option("layer-ffn", "", "a,b,...: FFN channels to keep in each layer (one count per layer)"),
      int_option("ffn-multiple", 1, "Round kept FFN channel counts to a multiple of M (e.g. 32 or 256 for whole quant "
                 "blocks; default 1)").with_check(OptionCheck::Positive),
      flag_option("per-layer-counts", "Meet ratios globally (scores normalised per layer, ranked across layers) so "
                  "layers keep different counts; needs --format gguf"),
      string_option("keep-layers", "", "Layers to keep, e.g. 0,2-5 (source indices)"),
      string_option("drop-layers", "", "Layers to remove, e.g. 1,3 (source indices)"),
      flag_option("refit", "Re-fit o_proj/down_proj of cut layers by ridge least squares on the calibration windows"),
      float_option("ridge", RefitOptions{}.ridge, "Refit ridge, relative to mean diag(XᵀX) (default 0.01)")
          .with_check(OptionCheck::NonNegative),
  };
  s.options.insert(s.options.end(), rest.begin(), rest.end());
  for (auto& spec : eval_option_specs("--eval")) s.options.push_back(spec);
  s.options.push_back(string_option("reference", "", "Evaluate against this model instead of the input (default: "
                                    "the input)").with_check(OptionCheck::ExistingPath).as_path().cli_only());
  s.options.push_back(string_option("report", "", "Report path (default: beside the output, OUT.report.{json,md} or "
                                    "OUT/report.{json,md})").as_path().cli_only());
  s.options.push_back(float_option("max-ppl-increase", -1, "Exit with code 6 when perplexity rises by more than PCT "
                                   "percent (needs --eval)").with_check(OptionCheck::NonNegative).cli_only());
  s.options.push_back(float_option("max-kl", -1, "Exit with code 6 when mean KL(original||output) exceeds X (needs "
                                   "--eval)").with_check(OptionCheck::NonNegative).cli_only());
  s.options.push_back(flag_option("json", "Print the report (or, with --scores alone, the scores) as JSON on stdout")
                          .cli_only());
  s.run = run_prune;
  return s;
}

}  // namespace slmopt::pipeline
