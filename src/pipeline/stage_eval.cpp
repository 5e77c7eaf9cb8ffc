// The eval stage: perplexity of the input model on a text or token file, with the protocol documented in
// eval/perplexity.h.
#include <cstdio>

#include "stages.h"
#include "slmopt/eval/perplexity.h"
#include "slmopt/pipeline/stage_report.h"

namespace slmopt::pipeline {
namespace {

void run_eval(PipelineContext& ctx, const OptionValues& v) {
  EvalTextOptions text = eval_from_values(v, "--text");
  const Model& model = ctx.input();
  const auto& windows = ctx.eval_windows(model, text);
  const ModelRunner runner(model);
  const PerplexityResult r = evaluate_perplexity(runner, windows);
  if (v.flag("json")) {
    print_json({{"model", v.str("MODEL")},
                {"text", text.text_path.empty() ? text.tokens_path : text.text_path},
                {"ctx", text.ctx},
                {"windows", r.windows},
                {"tokens_scored", r.tokens_scored},
                {"nll", r.mean_nll},
                {"perplexity", r.perplexity},
                {"seconds", r.seconds},
                {"tokens_per_second", r.tokens_per_second}});
  } else {
    std::printf("%lld windows of %lld tokens, %lld tokens scored\n", (long long)r.windows, (long long)text.ctx,
                (long long)r.tokens_scored);
    std::printf("nll %.5f nats/token  perplexity %.4f  (%.0f tokens/s, %.2f s)\n", r.mean_nll, r.perplexity,
                r.tokens_per_second, r.seconds);
  }
}

}  // namespace

StageInfo eval_stage() {
  StageInfo s;
  s.name = "eval";
  s.summary = "Perplexity of a model on a text or token file";
  s.footer = kEvalProtocolHelp;
  s.options = {positional_option("MODEL", "Hugging Face folder, .gguf or .onnx file")};
  for (auto& spec : eval_option_specs("--text")) s.options.push_back(spec);
  s.options.push_back(flag_option("json", "Print one JSON document"));
  s.run = run_eval;
  return s;
}

}  // namespace slmopt::pipeline
