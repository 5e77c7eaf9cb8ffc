// The evaluation-text options shared by eval, quantize, prune (--text/--tokens/--ctx/--max-windows), and the
// one function that turns them into windows, so every subcommand scores text the same way.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "slmopt/ir/model.h"
#include "slmopt/text/dataset.h"

namespace slmopt::driver {

struct EvalTextOptions {
  std::string text_path;    // --text / --eval
  std::string tokens_path;  // --tokens
  int64_t ctx = 0;          // 0: min(model context, 512)
  int64_t max_windows = 0;  // 0: all
};

inline constexpr const char* kEvalProtocolHelp =
    "Perplexity protocol: the text is tokenized without special tokens and cut into consecutive non-overlapping "
    "windows. With a BOS token (tokenizer add_bos) each window is BOS + (ctx-1) text tokens and every text token "
    "is scored; without, each window is ctx tokens and all but the first are scored. Mean NLL = total -log p over "
    "scored tokens / their count; perplexity = exp(mean NLL). A final partial window counts when it has at least "
    "2 scorable tokens.";

// Adds --text/--tokens (one of them; `flag` names the text option, e.g. "--text" or "--eval"), --ctx,
// --max-windows.
void add_eval_text_options(CLI::App& sub, EvalTextOptions& options, bool required, const std::string& flag = "--text");

// Tokenizes (or reads) the evaluation corpus and cuts it into windows for `model`.
std::vector<EvalWindow> build_eval_windows(const Model& model, EvalTextOptions& options);

// The corpus as token ids (text through the model's tokenizer, or a token-id file).
std::vector<int32_t> load_corpus(const Model& model, const std::string& text_path, const std::string& tokens_path);

}  // namespace slmopt::driver
