// Perplexity and model-vs-model comparison over evaluation windows (text/dataset.h's protocol).
//
// Protocol: the text is tokenized without special tokens and cut into consecutive, non-overlapping windows.
// When the model has a BOS token, each window is BOS + (ctx − 1) text tokens and every text token is scored;
// otherwise each window is ctx text tokens and all but the first are scored. The score of a token is
// −log p(token | everything before it in its window). Mean NLL is the sum over all scored tokens divided by their
// count (not a mean of per-window means); perplexity = exp(mean NLL).
//
// Sums are accumulated per window in double, then added in window order, so results are identical for any
// thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "slmopt/exec/model_runner.h"
#include "slmopt/text/dataset.h"

namespace slmopt {

struct PerplexityResult {
  int64_t windows = 0;
  int64_t tokens_scored = 0;
  double mean_nll = 0;  // nats/token
  double perplexity = 0;
  double seconds = 0;
  double tokens_per_second = 0;  // all tokens run through the model (scored or not) per second
};

PerplexityResult evaluate_perplexity(const ModelRunner& runner, const std::vector<EvalWindow>& windows);

struct ComparisonResult {
  PerplexityResult original, candidate;
  double mean_kl = 0;         // mean over scored positions of KL(original ‖ candidate), nats
  double top1_agreement = 0;  // fraction of scored positions whose argmax tokens agree
};

// Runs both models on the same windows and compares their next-token distributions position by position.
ComparisonResult compare_models(const ModelRunner& original, const ModelRunner& candidate,
                                const std::vector<EvalWindow>& windows);

}  // namespace slmopt
