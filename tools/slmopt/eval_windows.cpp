#include "eval_windows.h"

#include <algorithm>

#include "slmopt/core/error.h"
#include "slmopt/text/tokenizer.h"

namespace slmopt::driver {

void add_eval_text_options(CLI::App& sub, EvalTextOptions& options, bool required, const std::string& flag) {
  auto* text = sub.add_option(flag, options.text_path, "Evaluation text (UTF-8), tokenized with the model's tokenizer")
                   ->check(CLI::ExistingFile);
  auto* tokens = sub.add_option("--tokens", options.tokens_path,
                                "Evaluation token ids: whitespace-separated decimal ids, or little-endian uint32 in a .bin file")
                     ->check(CLI::ExistingFile);
  text->excludes(tokens);
  sub.add_option("--ctx", options.ctx, "Window length in tokens (default: min(model context, 512))")
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 20));
  sub.add_option("--max-windows", options.max_windows, "Evaluate at most this many windows (default: all)")
      ->check(CLI::NonNegativeNumber);
  (void)required;  // checked in build_eval_windows: CLI11 cannot require one of two options alone
}

std::vector<int32_t> load_corpus(const Model& model, const std::string& text_path, const std::string& tokens_path) {
  if (!tokens_path.empty()) return read_token_file(tokens_path, model.config.vocab_size);
  if (model.vocab.kind == VocabKind::None)
    throw_error(ErrorKind::Usage, "{}: the model has no tokenizer; pass token ids with --tokens", model.source_path);
  const Tokenizer tokenizer(model.vocab);
  return tokenize_file(tokenizer, text_path);
}

std::vector<EvalWindow> build_eval_windows(const Model& model, EvalTextOptions& options) {
  if (options.text_path.empty() && options.tokens_path.empty())
    throw_error(ErrorKind::Usage, "an evaluation text (--text) or token file (--tokens) is required");
  if (options.ctx == 0) options.ctx = std::min<int64_t>(model.config.max_position, 512);
  if (options.ctx > model.config.max_position)
    throw_error(ErrorKind::Usage, "--ctx {} exceeds the model's context length {}", options.ctx,
                model.config.max_position);
  const auto corpus = load_corpus(model, options.text_path, options.tokens_path);
  std::optional<int32_t> bos;
  if (model.vocab.add_bos && model.vocab.bos_id) bos = *model.vocab.bos_id;
  auto windows = make_eval_windows(corpus, options.ctx, bos, options.max_windows);
  if (windows.empty())
    throw_error(ErrorKind::Usage, "{}: too short for one evaluation window ({} tokens)",
                options.text_path.empty() ? options.tokens_path : options.text_path, corpus.size());
  return windows;
}

}  // namespace slmopt::driver
