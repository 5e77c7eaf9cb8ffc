#include "slmopt/exec/generate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>

#include "slmopt/core/error.h"
#include "slmopt/exec/log_softmax.h"

namespace slmopt {

std::vector<int32_t> generate_greedy(const ModelRunner& runner, std::span<const int32_t> prompt,
                                     int64_t max_new_tokens, std::optional<int32_t> stop_token) {
  SamplingOptions options;
  options.max_new_tokens = max_new_tokens;
  options.stop_token = stop_token;
  return generate(runner, prompt, options).tokens;
}

namespace {

float top_two_margin(std::span<const float> row) {
  float first = -INFINITY, second = -INFINITY;
  for (float v : row) {
    if (v > first) {
      second = first;
      first = v;
    } else if (v > second) {
      second = v;
    }
  }
  return row.size() > 1 ? first - second : 0.0f;
}

}  // namespace

int32_t sample_token(std::span<const float> logits, const SamplingOptions& o, double u) {
  if (o.temperature <= 0) return argmax(logits);
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  const auto by_logit = [&](int32_t a, int32_t b) {
    return logits[static_cast<size_t>(a)] != logits[static_cast<size_t>(b)]
               ? logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)]
               : a < b;
  };
  size_t keep = ids.size();
  if (o.top_k > 0 && static_cast<size_t>(o.top_k) < ids.size()) {
    keep = static_cast<size_t>(o.top_k);
    std::partial_sort(ids.begin(), ids.begin() + static_cast<ptrdiff_t>(keep), ids.end(), by_logit);
  } else {
    std::sort(ids.begin(), ids.end(), by_logit);
  }
  ids.resize(keep);
  // Sorted by logit, so also by probability; softmax in double over the kept tokens.
  std::vector<double> p(keep);
  const double top = logits[static_cast<size_t>(ids[0])];
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) sum += p[i] = std::exp((logits[static_cast<size_t>(ids[i])] - top) / o.temperature);
  size_t nucleus = keep;
  if (o.top_p < 1.0) {
    double mass = 0;
    for (size_t i = 0; i < keep; ++i) {
      mass += p[i] / sum;
      if (mass >= o.top_p) {
        nucleus = i + 1;
        break;
      }
    }
  }
  double kept = 0;
  for (size_t i = 0; i < nucleus; ++i) kept += p[i];
  double cumulative = 0;
  for (size_t i = 0; i < nucleus; ++i) {
    cumulative += p[i] / kept;
    if (u < cumulative) return ids[i];
  }
  return ids[nucleus - 1];  // u within rounding of 1
}

GenerationResult generate(const ModelRunner& runner, std::span<const int32_t> prompt, const SamplingOptions& o) {
  if (prompt.empty()) throw_error(ErrorKind::Usage, "generation needs at least one prompt token");
  GenerationResult result;
  if (o.max_new_tokens <= 0) return result;
  std::mt19937_64 rng(o.seed);
  const auto draw = [&] { return static_cast<double>(rng() >> 11) * 0x1.0p-53; };
  const auto start = std::chrono::steady_clock::now();
  KvCache cache = runner.make_cache(static_cast<int64_t>(prompt.size()) + o.max_new_tokens);
  RowMatrix logits = runner.decode(cache, prompt);
  const auto after_prompt = std::chrono::steady_clock::now();
  result.prompt_seconds = std::chrono::duration<double>(after_prompt - start).count();
  for (;;) {
    const std::span<const float> row = row_span(logits, logits.rows() - 1);
    result.margins.push_back(top_two_margin(row));
    const int32_t next = sample_token(row, o, o.temperature > 0 ? draw() : 0.0);
    result.tokens.push_back(next);
    if ((o.stop_token && next == *o.stop_token) || static_cast<int64_t>(result.tokens.size()) >= o.max_new_tokens) break;
    const int32_t input[1] = {next};
    logits = runner.decode(cache, input);
  }
  result.decode_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - after_prompt).count();
  return result;
}

}  // namespace slmopt
