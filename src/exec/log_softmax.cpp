#include "slmopt/exec/log_softmax.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "slmopt/core/error.h"

namespace slmopt {

double logsumexp(std::span<const float> row) {
  float max_value = -std::numeric_limits<float>::infinity();
  for (float x : row) max_value = std::max(max_value, x);
  if (std::isinf(max_value) && max_value < 0) return -std::numeric_limits<double>::infinity();
  double sum = 0;
  for (float x : row) sum += std::exp(static_cast<double>(x) - max_value);
  return max_value + std::log(sum);
}

void log_softmax(std::span<const float> row, std::span<float> out) {
  if (out.size() != row.size())
    throw_error(ErrorKind::Internal, "log_softmax: {} outputs for {} inputs", out.size(), row.size());
  const double lse = logsumexp(row);
  for (size_t i = 0; i < row.size(); ++i) out[i] = static_cast<float>(row[i] - lse);
}

double token_log_prob(std::span<const float> row, int32_t token) {
  if (token < 0 || static_cast<size_t>(token) >= row.size())
    throw_error(ErrorKind::Internal, "token {} is outside a row of {} logits", token, row.size());
  return row[static_cast<size_t>(token)] - logsumexp(row);
}

std::vector<double> next_token_nll(const RowMatrix& logits, std::span<const int32_t> tokens) {
  if (logits.rows() != static_cast<int64_t>(tokens.size()))
    throw_error(ErrorKind::Internal, "next_token_nll: {} rows of logits for {} tokens", logits.rows(), tokens.size());
  std::vector<double> nll;
  if (tokens.size() < 2) return nll;
  nll.reserve(tokens.size() - 1);
  for (size_t i = 0; i + 1 < tokens.size(); ++i)
    nll.push_back(-token_log_prob(row_span(logits, static_cast<int64_t>(i)), tokens[i + 1]));
  return nll;
}

std::vector<TokenLogProb> top_k_log_probs(std::span<const float> row, int64_t k) {
  const size_t n = std::min(row.size(), static_cast<size_t>(std::max<int64_t>(0, k)));
  std::vector<int32_t> ids(row.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(n), ids.end(), [&](int32_t a, int32_t b) {
    const float va = row[static_cast<size_t>(a)], vb = row[static_cast<size_t>(b)];
    return va > vb || (va == vb && a < b);
  });
  const double lse = logsumexp(row);
  std::vector<TokenLogProb> top(n);
  for (size_t i = 0; i < n; ++i) top[i] = {ids[i], static_cast<float>(row[static_cast<size_t>(ids[i])] - lse)};
  return top;
}

int32_t argmax(std::span<const float> row) {
  if (row.empty()) return -1;
  size_t best = 0;
  for (size_t i = 1; i < row.size(); ++i)
    if (row[i] > row[best]) best = i;
  return static_cast<int32_t>(best);
}

}  // namespace slmopt
