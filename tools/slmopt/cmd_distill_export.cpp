// slmopt distill-export TEACHER -o OUT (--text F | --tokens F) [student and label options]: everything offline
// distillation needs (distill/recipe.h) — a student folder cut from the teacher or a pruned model, the teacher's
// top-k soft labels over a corpus, and distill_recipe.json with the loss and training hyper-parameters.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "eval_windows.h"
#include "report_helpers.h"
#include "slmopt/core/error.h"
#include "slmopt/distill/recipe.h"
#include "slmopt/distill/student.h"
#include "slmopt/io/model_loader.h"
#include "slmopt/text/dataset.h"

namespace slmopt::driver {
namespace {

struct DistillCliOptions {
  std::string teacher;
  std::string output;
  std::string text_path, tokens_path;
  std::string student_layers;
  std::string student_from;
  std::string student_type = "keep";
  std::string logprob_dtype = "f32";
  SoftLabelOptions labels;
  DistillHyperparameters hyper;
  bool json = false;
};

void run_distill_export(DistillCliOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  if (o.text_path.empty() && o.tokens_path.empty())
    throw_error(ErrorKind::Usage, "a corpus (--text FILE or --tokens FILE) is required");

  DistillExportOptions options;
  options.out_dir = o.output;
  options.teacher_path = o.teacher;
  options.student_from = o.student_from;
  options.hyper = o.hyper;
  options.labels = o.labels;
  options.labels.teacher_path = o.teacher;
  options.labels.corpus_path = o.text_path.empty() ? o.tokens_path : o.text_path;
  if (o.logprob_dtype == "f32") options.labels.logprob_dtype = DType::F32;
  else if (o.logprob_dtype == "f16") options.labels.logprob_dtype = DType::F16;
  else throw_error(ErrorKind::Usage, "--logprob-dtype '{}': choose f32 or f16", o.logprob_dtype);
  if (o.student_type != "keep") {
    const auto type = dtype_from_name(o.student_type);
    if (!type || (*type != DType::F32 && *type != DType::F16 && *type != DType::BF16))
      throw_error(ErrorKind::Usage, "--student-type '{}': choose keep, f32, f16 or bf16", o.student_type);
    options.student_write.float_type = type;
  }

  const Model teacher = load_model(o.teacher);
  teacher.validate();
  std::optional<Model> loaded_source;
  if (!o.student_from.empty()) {
    loaded_source = load_model(o.student_from);
    loaded_source->validate();
  }
  const Model& source = loaded_source ? *loaded_source : teacher;
  if (!o.student_layers.empty()) {
    try {
      options.student_layers = parse_layer_list(o.student_layers, source.config.num_layers);
    } catch (const Error& e) {
      throw Error(ErrorKind::Usage, std::string("--student-layers: ") + e.what());
    }
  }
  // A block-quantized source has no safetensors form: store the student as F16 unless told otherwise.
  if (!options.student_write.float_type)
    for (const auto& [name, t] : source.tensors())
      if (traits(t.dtype()).is_quantized) options.student_write.float_type = DType::F16;

  const std::vector<int32_t> corpus = load_corpus(teacher, o.text_path, o.tokens_path);
  // distill_export writes the student before the soft labels: check what would fail there first, so a bad
  // option or corpus leaves no partial kit behind.
  const int64_t ctx = o.labels.ctx ? o.labels.ctx : std::min<int64_t>(teacher.config.max_position, 512);
  if (ctx > teacher.config.max_position)
    throw_error(ErrorKind::Usage, "--ctx {} exceeds the teacher's context length {}", ctx, teacher.config.max_position);
  if (o.labels.top_k > teacher.config.vocab_size)
    throw_error(ErrorKind::Usage, "--top-k {} exceeds the teacher's vocabulary ({} tokens)", o.labels.top_k,
                teacher.config.vocab_size);
  std::optional<int32_t> bos;
  if (teacher.vocab.add_bos && teacher.vocab.bos_id) bos = *teacher.vocab.bos_id;
  if (make_eval_windows(corpus, ctx, bos, 1).empty())
    throw_error(ErrorKind::BadInput, "{}: too short for one window ({} tokens)", options.labels.corpus_path,
                corpus.size());
  const DistillExportResult r = distill_export(teacher, source, corpus, options);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  const auto& m = r.manifest;
  if (o.json) {
    print_json({{"teacher", o.teacher},
                {"student_from", o.student_from.empty() ? o.teacher : o.student_from},
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
                {"bytes", path_bytes(o.output)},
                {"seconds", seconds}});
  } else {
    std::printf("student %s: %lld parameters%s\n", r.student_dir.c_str(), (long long)r.student_parameters,
                o.student_layers.empty() ? "" : (", layers " + o.student_layers).c_str());
    std::printf("soft labels %s: %lld windows of %lld tokens, %lld positions, top-%lld, %zu shard(s)\n",
                r.labels_dir.c_str(), (long long)m.windows, (long long)m.ctx, (long long)m.positions,
                (long long)m.top_k, m.shards.size());
    std::printf("recipe %s (%s in all, %.2f s)\n", r.recipe_path.c_str(),
                human_bytes(static_cast<double>(path_bytes(o.output))).c_str(), seconds);
  }
}

}  // namespace

CommandSpec distill_export_command() {
  return {"distill-export",
          "Export a distillation kit: a student cut from the teacher, the teacher's top-k soft labels, and the recipe",
          [](CLI::App& sub, const GlobalOptions&) -> std::function<void()> {
            auto o = std::make_shared<DistillCliOptions>();
            sub.add_option("TEACHER", o->teacher, "Teacher model: Hugging Face folder, .gguf or .onnx file")->required();
            sub.add_option("-o,--output", o->output, "Output folder (gets student/, soft_labels/, distill_recipe.json)")
                ->required();
            auto* text = sub.add_option("--text", o->text_path, "Corpus text (UTF-8), tokenized with the teacher's tokenizer")
                             ->check(CLI::ExistingFile);
            auto* tokens = sub.add_option("--tokens", o->tokens_path,
                                          "Corpus token ids: whitespace-separated decimal ids, or little-endian uint32 in a .bin file")
                               ->check(CLI::ExistingFile);
            text->excludes(tokens);
            sub.add_option("--student-layers", o->student_layers,
                           "Layers of the student source to keep, e.g. 0,2 or 0-3,6 (default: all)");
            sub.add_option("--student-from", o->student_from,
                           "Cut the student from this model (e.g. a pruned one) instead of the teacher; same vocabulary")
                ->check(CLI::ExistingPath);
            sub.add_option("--student-type", o->student_type, "Student float type: keep (default), f32, f16 or bf16");
            sub.add_option("--top-k", o->labels.top_k, "Teacher log-probabilities kept per position (default 32)")
                ->check(CLI::PositiveNumber);
            sub.add_option("--ctx", o->labels.ctx, "Window length in tokens (default: min(teacher context, 512))")
                ->check(CLI::Range(int64_t{2}, int64_t{1} << 20));
            sub.add_option("--shard-tokens", o->labels.shard_tokens, "Positions per soft-label shard (default 1048576)")
                ->check(CLI::PositiveNumber);
            sub.add_option("--logprob-dtype", o->logprob_dtype, "Stored log-probability type: f32 (default) or f16");
            sub.add_option("--max-windows", o->labels.max_windows, "Export at most this many windows (default: all)")
                ->check(CLI::NonNegativeNumber);
            sub.add_option("--temperature", o->hyper.temperature, "Recipe: distillation temperature T (default 2)");
            sub.add_option("--kl-weight", o->hyper.kl_weight, "Recipe: weight of T²·KL(teacher ‖ student) (default 0.5)");
            sub.add_option("--ce-weight", o->hyper.ce_weight, "Recipe: weight of the next-token cross-entropy (default 0.5)");
            sub.add_option("--steps", o->hyper.steps, "Recipe: training steps (default 300)");
            sub.add_option("--lr", o->hyper.learning_rate, "Recipe: learning rate (default 1e-3)");
            sub.add_option("--batch-windows", o->hyper.batch_windows, "Recipe: windows per training batch (default 8)");
            sub.add_option("--weight-decay", o->hyper.weight_decay, "Recipe: AdamW weight decay (default 0)")
                ->check(CLI::NonNegativeNumber);
            sub.add_option("--seed", o->hyper.seed, "Recipe: training seed (default 0)");
            sub.add_flag("--json", o->json, "Print a JSON summary of what was written");
            sub.footer(
                "Windows follow eval's protocol (consecutive, non-overlapping, BOS-prefixed when the tokenizer adds "
                "BOS); every corpus token is the target of one position. Train with scripts/distill_train.py "
                "OUT/distill_recipe.json.");
            return [o] { run_distill_export(*o); };
          }};
}

}  // namespace slmopt::driver
