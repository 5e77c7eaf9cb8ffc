// The generate tool: `slmopt generate MODEL --prompt TEXT` on slmopt's own forward pass (any input format), so a
// user sees at once whether a quantized or pruned model still talks. Sampling: exec/generate.h.
#include <cstdio>

#include <spdlog/spdlog.h>

#include "tools.h"
#include "slmopt/core/error.h"
#include "slmopt/exec/generate.h"
#include "slmopt/io/model_loader.h"
#include "slmopt/pipeline/stage_report.h"
#include "slmopt/text/tokenizer.h"

namespace slmopt::pipeline {
namespace {

void run_generate(const OptionValues& v) {
  const Model model = load_model(v.str("MODEL"));
  if (model.vocab.kind == VocabKind::None)
    throw_error(ErrorKind::Usage, "{}: the model has no tokenizer to encode --prompt", v.str("MODEL"));
  const Tokenizer tokenizer(model.vocab);
  const std::vector<int32_t> prompt = tokenizer.encode(v.str("prompt"), !v.flag("no-bos"));
  if (prompt.empty()) throw_error(ErrorKind::Usage, "--prompt: the prompt encodes to no tokens (give some text)");
  SamplingOptions o;
  o.max_new_tokens = v.i64("max-tokens");
  o.temperature = v.f64("temp");
  o.top_k = v.i64("top-k");
  o.top_p = v.f64("top-p");
  o.seed = static_cast<uint64_t>(v.i64("seed"));
  if (!v.flag("ignore-eos")) o.stop_token = tokenizer.eos_id();
  if (static_cast<int64_t>(prompt.size()) + o.max_new_tokens > model.config.max_position &&
      model.config.max_position > 0)
    throw_error(ErrorKind::Usage, "--prompt ({} tokens) + -n {} exceeds the model's context of {} tokens",
                prompt.size(), o.max_new_tokens, model.config.max_position);
  const ModelRunner runner(model);
  const GenerationResult r = generate(runner, prompt, o);
  const std::string text = tokenizer.decode(r.tokens, true);
  const double tokens_per_second =
      r.decode_seconds > 0 && r.tokens.size() > 1 ? static_cast<double>(r.tokens.size() - 1) / r.decode_seconds : 0;
  if (v.flag("json")) {
    print_json({{"model", v.str("MODEL")},
                {"prompt", v.str("prompt")},
                {"prompt_ids", prompt},
                {"ids", r.tokens},
                {"margins", r.margins},
                {"text", text},
                {"prompt_seconds", r.prompt_seconds},
                {"decode_tokens_per_second", tokens_per_second}});
    return;
  }
  std::printf("%s%s\n", v.str("prompt").c_str(), text.c_str());
  spdlog::info("{} prompt tokens, {} generated ({:.0f} tokens/s)", prompt.size(), r.tokens.size(), tokens_per_second);
}

}  // namespace

ToolInfo generate_tool() {
  ToolInfo t;
  t.name = "generate";
  t.summary = "Continue a prompt with slmopt's own forward pass (greedy, or seeded sampling)";
  t.footer = "Greedy by default (--temp 0). With --temp > 0: top-k, then softmax(logits/temp), then the top-p "
             "nucleus, one seeded draw per token; the same seed gives the same text at any thread count.";
  t.options = {positional_option("MODEL", "Hugging Face folder, .gguf or .onnx file"),
               string_option("prompt", "", "The text to continue").mandatory(),
               int_option("max-tokens", 32, "Tokens to generate (default 32)").with_flags("-n,--max-tokens")
                   .with_check(OptionCheck::Positive),
               float_option("temp", 0.0, "Sampling temperature (default 0: greedy)").with_check(OptionCheck::NonNegative),
               int_option("top-k", 0, "Sample among the K most likely tokens (default 0: all)")
                   .with_check(OptionCheck::NonNegative),
               float_option("top-p", 1.0, "Nucleus: the most likely tokens holding mass P (default 1: all)")
                   .with_check(OptionCheck::Range, 0.0, 1.0),
               int_option("seed", 0, "Random seed for sampling (default 0)").with_check(OptionCheck::NonNegative),
               flag_option("ignore-eos", "Keep generating after the end-of-sequence token"),
               flag_option("no-bos", "Do not add the tokenizer's BOS token before the prompt"),
               flag_option("json", "Print {prompt_ids, ids, margins (top-1 minus top-2 logit per step), text, ...} as JSON")};
  t.run = run_generate;
  return t;
}

}  // namespace slmopt::pipeline
