// Numerically stable helpers over one row of logits, shared by evaluation (perplexity, KL, agreement) and
// distillation (teacher top-k log-probabilities) so nobody rewrites them. Sums of exponentials are taken
// after subtracting the row maximum and accumulated in double, in index order (deterministic).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "slmopt/exec/matrix.h"

namespace slmopt {

// log Σ exp(row[i]); -inf for an empty row or one that is all -inf.
double logsumexp(std::span<const float> row);

// out[i] = row[i] − logsumexp(row). out.size() must equal row.size().
void log_softmax(std::span<const float> row, std::span<float> out);

// log p(token) under softmax(row). Throws Error(Internal) for a token outside the row.
double token_log_prob(std::span<const float> row, int32_t token);

// −log p(tokens[i+1] | row i) for i in 0..T-2: the per-position next-token loss of one window whose logits
// are [T, vocab] (T = tokens.size()).
std::vector<double> next_token_nll(const RowMatrix& logits, std::span<const int32_t> tokens);

struct TokenLogProb {
  int32_t token;
  float log_prob;
};

// The k most likely tokens of the row with their log-probabilities, most likely first (ties: lower id first).
// k is clipped to the row length.
std::vector<TokenLogProb> top_k_log_probs(std::span<const float> row, int64_t k);

// Index of the largest value (the first one on ties); -1 for an empty row.
int32_t argmax(std::span<const float> row);

}  // namespace slmopt
