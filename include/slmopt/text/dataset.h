// Token corpora and the deterministic windows cut from them for evaluation (perplexity) and calibration.
//
// Token files: `.bin` holds little-endian uint32 ids back to back; any other name holds decimal ids separated by
// whitespace. Text files are tokenized whole, without special tokens.
//
// Evaluation protocol (make_eval_windows). The corpus is cut into consecutive, non-overlapping pieces:
//   * with a BOS id, each window is [BOS] + the next (ctx − 1) corpus tokens, and every corpus token in it is
//     scored: first_scored = 1;
//   * without one, each window is the next ctx corpus tokens, and all but the first are scored (the first has no
//     context): first_scored = 1.
// "Scored from index f" means: for every i ≥ f, the logits at position i − 1 predict tokens[i]; a window
// contributes tokens.size() − f negative log-likelihood terms. The last, shorter piece is kept when it still has
// at least 2 scored tokens, else dropped. Perplexity = exp(sum of NLL terms / number of terms) over all windows.
//
// Calibration protocol (sample_calibration_windows), as in GPTQ's recipe: n_samples windows of seqlen tokens,
// each a contiguous slice of the corpus starting at an offset drawn uniformly from every valid start, with
// replacement. With a BOS id a window is [BOS] + (seqlen − 1) corpus tokens. The offsets come from splitmix64
// seeded with `seed` and an unbiased bounded draw (no std:: distributions, whose output differs between standard
// libraries), so the same corpus and seed give the same windows on every platform.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "slmopt/text/tokenizer.h"

namespace slmopt {

// Throws Error(BadInput) naming the file and the position (byte offset, or line and column) of an id that is not
// a number or is ≥ vocab_size, or of a .bin file whose size is not a multiple of 4; Error(Io) when unreadable.
std::vector<int32_t> read_token_file(const std::string& path, int64_t vocab_size);

// The whole file through tokenizer.encode(text, /*add_special=*/false). Error(BadInput) naming the file when it
// is not UTF-8.
std::vector<int32_t> tokenize_file(const Tokenizer& tokenizer, const std::string& path);

struct EvalWindow {
  std::vector<int32_t> tokens;
  int64_t first_scored = 1;  // index of the first target token (see the protocol above)
};

// max_windows = 0 keeps every window; otherwise the first max_windows. Error(Usage) for ctx < 2 or a negative
// max_windows. An empty result means the corpus is too short for even one window.
std::vector<EvalWindow> make_eval_windows(const std::vector<int32_t>& corpus, int64_t ctx, std::optional<int32_t> bos,
                                          int64_t max_windows = 0);

// Error(Usage) for n_samples < 1 or seqlen < 2; Error(BadInput) naming both sizes when the corpus has fewer than
// seqlen tokens.
std::vector<std::vector<int32_t>> sample_calibration_windows(const std::vector<int32_t>& corpus, int64_t n_samples,
                                                             int64_t seqlen, uint64_t seed,
                                                             std::optional<int32_t> bos);

}  // namespace slmopt
