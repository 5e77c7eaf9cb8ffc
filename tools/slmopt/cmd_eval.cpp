// slmopt eval MODEL (--text FILE | --tokens FILE) [--ctx N] [--max-windows K] [--json]: perplexity with the
// protocol documented in eval/perplexity.h.
#include <cstdio>

#include "commands.h"
#include "eval_windows.h"
#include "slmopt/core/error.h"
#include "slmopt/eval/perplexity.h"
#include "slmopt/io/model_loader.h"

namespace slmopt::driver {

CommandSpec eval_command() {
  return {"eval", "Perplexity of a model on a text or token file",
          [](CLI::App& sub, const GlobalOptions&) -> std::function<void()> {
            struct Options {
              std::string model;
              EvalTextOptions text;
              bool json = false;
            };
            auto o = std::make_shared<Options>();
            sub.add_option("MODEL", o->model, "Hugging Face folder, .gguf or .onnx file")->required();
            add_eval_text_options(sub, o->text, /*required=*/true);
            sub.add_flag("--json", o->json, "Print one JSON document");
            sub.footer(kEvalProtocolHelp);
            return [o] {
              const Model model = load_model(o->model);
              const auto windows = build_eval_windows(model, o->text);
              const ModelRunner runner(model);
              const PerplexityResult r = evaluate_perplexity(runner, windows);
              if (o->json) {
                print_json({{"model", o->model},
                            {"text", o->text.text_path.empty() ? o->text.tokens_path : o->text.text_path},
                            {"ctx", o->text.ctx},
                            {"windows", r.windows},
                            {"tokens_scored", r.tokens_scored},
                            {"nll", r.mean_nll},
                            {"perplexity", r.perplexity},
                            {"seconds", r.seconds},
                            {"tokens_per_second", r.tokens_per_second}});
              } else {
                std::printf("%lld windows of %lld tokens, %lld tokens scored\n", (long long)r.windows,
                            (long long)o->text.ctx, (long long)r.tokens_scored);
                std::printf("nll %.5f nats/token  perplexity %.4f  (%.0f tokens/s, %.2f s)\n", r.mean_nll,
                            r.perplexity, r.tokens_per_second, r.seconds);
              }
            };
          }};
}

}  // namespace slmopt::driver
