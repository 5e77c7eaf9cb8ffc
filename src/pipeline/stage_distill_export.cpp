// The distill-export stage: everything offline distillation needs (distill/recipe.h) — a student folder cut from
// the teacher or a pruned model, the teacher's top-k soft labels over a corpus, and distill_recipe.json with the
// loss and training hyper-parameters. Inside a recipe the teacher is the recipe's model and the student is cut
// from the model the stages so far produced (e.g. the pruned one).
#include <algorithm>
#include <cstdio>
#include <optional>

#include <nlohmann/json.hpp>

#include "stages.h"
#include "slmopt/core/error.h"
#include "slmopt/distill/recipe.h"
#include "slmopt/distill/student.h"
#include "slmopt/io/model_loader.h"
#include "slmopt/pipeline/stage_report.h"
#include "slmopt/text/dataset.h"

namespace slmopt::pipeline {
namespace {

void run_distill_export(PipelineContext& ctx, const OptionValues& v) {
  const auto start = std::chrono::steady_clock::now();
  const std::string text_path = v.str("text"), tokens_path = v.str("tokens");
  const std::string student_layers = v.str("student-layers"), student_from = v.str("student-from");
  const std::string student_type = v.str("student-type"), logprob_dtype = v.str("logprob-dtype");
  const std::string output = v.str("output");
  const bool json = v.flag("json");
  if (text_path.empty() && tokens_path.empty())
    throw_error(ErrorKind::Usage, "a corpus (--text FILE or --tokens FILE) is required");

  DistillExportOptions options;
  options.out_dir = output;
  options.teacher_path = ctx.in_recipe ? ctx.reference().source_path : v.str("TEACHER");
  options.student_from = student_from;
  options.hyper.temperature = v.f64("temperature");
  options.hyper.kl_weight = v.f64("kl-weight");
  options.hyper.ce_weight = v.f64("ce-weight");
  options.hyper.steps = v.i64("steps");
  options.hyper.learning_rate = v.f64("lr");
  options.hyper.batch_windows = v.i64("batch-windows");
  options.hyper.weight_decay = v.f64("weight-decay");
  options.hyper.seed = v.i64("seed");
  options.labels.top_k = v.i64("top-k");
  options.labels.ctx = v.i64("ctx");
  options.labels.shard_tokens = v.i64("shard-tokens");
  options.labels.max_windows = v.i64("max-windows");
  options.labels.teacher_path = options.teacher_path;
  options.labels.corpus_path = text_path.empty() ? tokens_path : text_path;
  if (logprob_dtype == "f32") options.labels.logprob_dtype = DType::F32;
  else if (logprob_dtype == "f16") options.labels.logprob_dtype = DType::F16;
  else throw_error(ErrorKind::Usage, "--logprob-dtype '{}': choose f32 or f16", logprob_dtype);
  if (student_type != "keep") {
    const auto type = dtype_from_name(student_type);
    if (!type || (*type != DType::F32 && *type != DType::F16 && *type != DType::BF16))
      throw_error(ErrorKind::Usage, "--student-type '{}': choose keep, f32, f16 or bf16", student_type);
    options.student_write.float_type = type;
  }

  const Model& teacher = ctx.reference();
  std::optional<Model> loaded_source;
  if (!student_from.empty()) {
    loaded_source = load_model(student_from);
    loaded_source->validate();
  }
  // A subcommand cuts from the teacher; a recipe from the model its stages produced so far.
  const Model& source = loaded_source ? *loaded_source : ctx.input();
  if (ctx.in_recipe && student_from.empty()) options.student_from = source.source_path + " (after the recipe's stages)";
  if (!student_layers.empty()) {
    try {
      options.student_layers = parse_layer_list(student_layers, source.config.num_layers);
    } catch (const Error& e) {
      throw Error(ErrorKind::Usage, std::string("--student-layers: ") + e.what());
    }
  }
  // A block-quantized source has no safetensors form: store the student as F16 unless told otherwise.
  if (!options.student_write.float_type)
    for (const auto& [name, t] : source.tensors())
      if (traits(t.dtype()).is_quantized) options.student_write.float_type = DType::F16;

  const std::vector<int32_t> corpus = load_corpus(teacher, text_path, tokens_path);
  // distill_export writes the student before the soft labels: check what would fail there first, so a bad
  // option or corpus leaves no partial kit behind.
  const int64_t ctx_len = options.labels.ctx ? options.labels.ctx : std::min<int64_t>(teacher.config.max_position, 512);
  if (ctx_len > teacher.config.max_position)
    throw_error(ErrorKind::Usage, "--ctx {} exceeds the teacher's context length {}", ctx_len,
                teacher.config.max_position);
  if (options.labels.top_k > teacher.config.vocab_size)
    throw_error(ErrorKind::Usage, "--top-k {} exceeds the teacher's vocabulary ({} tokens)", options.labels.top_k,
                teacher.config.vocab_size);
  std::optional<int32_t> bos;
  if (teacher.vocab.add_bos && teacher.vocab.bos_id) bos = *teacher.vocab.bos_id;
  if (make_eval_windows(corpus, ctx_len, bos, 1).empty())
    throw_error(ErrorKind::BadInput, "{}: too short for one window ({} tokens)", options.labels.corpus_path,
                corpus.size());
  const DistillExportResult r = distill_export(teacher, source, corpus, options);
  const double seconds = seconds_since(start);
  if (ctx.in_recipe) return;

  const auto& m = r.manifest;
  if (json) {
    print_json({{"teacher", options.teacher_path},
                {"student_from", student_from.empty() ? options.teacher_path : student_from},
                {"student_layers", options.student_layers},
                {"student", r.student_dir},
                {"student_parameters", r.student_parameters},
                {"soft_labels", r.labels_dir},
                {"recipe", r.recipe_path},
                {"windows", m.windows},
                {"positions", m.positions},
                {"targets", m.targets},
                {"ctx", m.ctx},
                {"top_k", m.top_k},
                {"shards", m.shards.size()},
                {"bytes", path_bytes(output)},
                {"seconds", seconds}});
  } else {
    std::printf("student %s: %lld parameters%s\n", r.student_dir.c_str(), (long long)r.student_parameters,
                student_layers.empty() ? "" : (", layers " + student_layers).c_str());
    std::printf("soft labels %s: %lld windows of %lld tokens, %lld positions, top-%lld, %zu shard(s)\n",
                r.labels_dir.c_str(), (long long)m.windows, (long long)m.ctx, (long long)m.positions,
                (long long)m.top_k, m.shards.size());
    std::printf("recipe %s (%s in all, %.2f s)\n", r.recipe_path.c_str(),
                human_bytes(static_cast<double>(path_bytes(output))).c_str(), seconds);
  }
}

}  // namespace

StageInfo distill_export_stage() {
  const SoftLabelOptions labels;
  const DistillHyperparameters hyper;
  StageInfo s;
  s.name = "distill-export";
  s.summary = "Export a distillation kit: a student cut from the teacher, the teacher's top-k soft labels, and the recipe";
  s.footer = "Windows follow eval's protocol (consecutive, non-overlapping, BOS-prefixed when the tokenizer adds "
             "BOS); every corpus token is the target of one position. Train with scripts/distill_train.py "
             "OUT/distill_recipe.json.";
  s.options = {
      positional_option("TEACHER", "Teacher model: Hugging Face folder, .gguf or .onnx file"),
      string_option("output", "", "Output folder (gets student/, soft_labels/, distill_recipe.json)")
          .with_flags("-o,--output").mandatory().as_path().cli_only(),
      string_option("text", "", "Corpus text (UTF-8), tokenized with the teacher's tokenizer")
          .with_check(OptionCheck::ExistingFile).as_path().excluding("tokens"),
      string_option("tokens", "", "Corpus token ids: whitespace-separated decimal ids, or little-endian uint32 in a "
                    ".bin file").with_check(OptionCheck::ExistingFile).as_path(),
      string_option("student-layers", "", "Layers of the student source to keep, e.g. 0,2 or 0-3,6 (default: all)"),
      string_option("student-from", "", "Cut the student from this model (e.g. a pruned one) instead of the teacher; "
                    "same vocabulary").with_check(OptionCheck::ExistingPath).as_path(),
      string_option("student-type", "keep", "Student float type: keep (default), f32, f16 or bf16"),
      int_option("top-k", labels.top_k, "Teacher log-probabilities kept per position (default 32)")
          .with_check(OptionCheck::Positive),
      int_option("ctx", labels.ctx, "Window length in tokens (default: min(teacher context, 512))")
          .with_check(OptionCheck::Range, 2, static_cast<double>(int64_t{1} << 20)),
      int_option("shard-tokens", labels.shard_tokens, "Positions per soft-label shard (default 1048576)")
          .with_check(OptionCheck::Positive),
      string_option("logprob-dtype", "f32", "Stored log-probability type: f32 (default) or f16"),
      int_option("max-windows", labels.max_windows, "Export at most this many windows (default: all)")
          .with_check(OptionCheck::NonNegative),
      float_option("temperature", hyper.temperature, "Recipe: distillation temperature T (default 2)"),
      float_option("kl-weight", hyper.kl_weight, "Recipe: weight of T²·KL(teacher ‖ student) (default 0.5)"),
      float_option("ce-weight", hyper.ce_weight, "Recipe: weight of the next-token cross-entropy (default 0.5)"),
      int_option("steps", hyper.steps, "Recipe: training steps (default 300)"),
      float_option("lr", hyper.learning_rate, "Recipe: learning rate (default 1e-3)"),
      int_option("batch-windows", hyper.batch_windows, "Recipe: windows per training batch (default 8)"),
      float_option("weight-decay", hyper.weight_decay, "Recipe: AdamW weight decay (default 0)")
          .with_check(OptionCheck::NonNegative),
      int_option("seed", static_cast<int64_t>(hyper.seed), "Recipe: training seed (default 0)"),
      flag_option("json", "Print a JSON summary of what was written").cli_only(),
  };
  s.run = run_distill_export;
  return s;
}

}  // namespace slmopt::pipeline
