// The calibration and evaluation text every stage reads the same way: the options (--calib, --calib-tokens,
// --calib-samples, --calib-seqlen, --seed; --text/--eval, --tokens, --ctx, --max-windows) as option-table rows,
// and the functions that turn them into windows. The importance-matrix file (--imatrix-in / --imatrix-out)
// lives here too.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "slmopt/ir/model.h"
#include "slmopt/pipeline/options.h"
#include "slmopt/quant/importance.h"
#include "slmopt/text/dataset.h"

namespace slmopt::pipeline {

struct CalibTextOptions {
  std::string text_path;
  std::string tokens_path;
  int64_t samples = 128;
  int64_t seqlen = 0;  // 0: min(model context, 512)
  uint64_t seed = 0;
  bool given() const { return !text_path.empty() || !tokens_path.empty(); }
  nlohmann::json to_json() const;
  std::string key() const;  // identifies the windows these options produce
};

struct EvalTextOptions {
  std::string text_path;    // --text / --eval
  std::string tokens_path;  // --tokens
  int64_t ctx = 0;          // 0: min(model context, 512)
  int64_t max_windows = 0;  // 0: all
  bool given() const { return !text_path.empty() || !tokens_path.empty(); }
  std::string key() const;
};

inline constexpr const char* kEvalProtocolHelp =
    "Perplexity protocol: the text is tokenized without special tokens and cut into consecutive non-overlapping "
    "windows. With a BOS token (tokenizer add_bos) each window is BOS + (ctx-1) text tokens and every text token "
    "is scored; without, each window is ctx tokens and all but the first are scored. Mean NLL = total -log p over "
    "scored tokens / their count; perplexity = exp(mean NLL). A final partial window counts when it has at least "
    "2 scorable tokens.";

// Option rows: --calib, --calib-tokens, --calib-samples, --calib-seqlen, --seed with a stage's defaults.
std::vector<OptionSpec> calibration_option_specs(int64_t default_samples, const std::string& samples_help,
                                                 int64_t default_seqlen, const std::string& seqlen_help,
                                                 const std::string& seed_help);
CalibTextOptions calibration_from_values(const OptionValues& values);
// Option rows: FLAG (--text or --eval), --tokens, --ctx, --max-windows.
std::vector<OptionSpec> eval_option_specs(const std::string& text_flag);
EvalTextOptions eval_from_values(const OptionValues& values, const std::string& text_flag);

// Deterministic calibration windows (text/dataset.h sample_calibration_windows); BOS-prefixed when the model's
// tokenizer adds BOS. A corpus shorter than seqlen is an Error(BadInput) naming the file. Fills in seqlen.
std::vector<std::vector<int32_t>> build_calibration_windows(const Model& model, CalibTextOptions& options);
// Tokenizes (or reads) the evaluation corpus and cuts it into windows for `model`. Fills in ctx.
std::vector<EvalWindow> build_eval_windows(const Model& model, EvalTextOptions& options);
// The corpus as token ids (text through the model's tokenizer, or a token-id file).
std::vector<int32_t> load_corpus(const Model& model, const std::string& text_path, const std::string& tokens_path);

// The importance matrix as a safetensors file: one F32 tensor per linear (canonical weight name, [in]) holding
// the mean squared input activation per column; metadata "format": "slmopt-imatrix", "tokens": count.
void save_importance(const ImportanceMatrix& importance, const std::string& path);
ImportanceMatrix load_importance(const std::string& path, const Model& model);

}  // namespace slmopt::pipeline
