#include "slmopt/eval/perplexity.h"

#include <chrono>
#include <cmath>

#include "slmopt/core/error.h"
#include "slmopt/core/progress.h"
#include "slmopt/exec/log_softmax.h"

namespace slmopt {
namespace {

struct WindowSums {
  double nll = 0;
  int64_t scored = 0;
  double nll_candidate = 0;
  double kl = 0;
  int64_t agree = 0;
};

std::vector<std::vector<int32_t>> window_tokens(const std::vector<EvalWindow>& windows) {
  std::vector<std::vector<int32_t>> out;
  out.reserve(windows.size());
  for (const auto& w : windows) out.push_back(w.tokens);
  return out;
}

// Positions p whose logits predict a scored token: p + 1 >= first_scored.
int64_t first_predicting_row(const EvalWindow& w) { return std::max<int64_t>(0, w.first_scored - 1); }

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

PerplexityResult summarise(const std::vector<WindowSums>& sums, bool candidate, int64_t total_tokens,
                           double seconds) {
  PerplexityResult r;
  r.windows = static_cast<int64_t>(sums.size());
  double nll = 0;
  for (const auto& s : sums) {
    nll += candidate ? s.nll_candidate : s.nll;
    r.tokens_scored += s.scored;
  }
  r.mean_nll = r.tokens_scored ? nll / static_cast<double>(r.tokens_scored) : 0.0;
  r.perplexity = std::exp(r.mean_nll);
  r.seconds = seconds;
  r.tokens_per_second = seconds > 0 ? static_cast<double>(total_tokens) / seconds : 0.0;
  return r;
}

int64_t count_tokens(const std::vector<EvalWindow>& windows) {
  int64_t n = 0;
  for (const auto& w : windows) n += static_cast<int64_t>(w.tokens.size());
  return n;
}

void check_windows(const std::vector<EvalWindow>& windows) {
  if (windows.empty()) throw_error(ErrorKind::Usage, "evaluation text gives no window with a token to score");
}

}  // namespace

PerplexityResult evaluate_perplexity(const ModelRunner& runner, const std::vector<EvalWindow>& windows) {
  check_windows(windows);
  const auto start = std::chrono::steady_clock::now();
  std::vector<WindowSums> sums(windows.size());
  const auto tokens = window_tokens(windows);
  Progress progress("evaluating perplexity", windows.size(), true);  // drawn on a terminal only
  runner.for_each_window(tokens, [&](size_t i, const RowMatrix& logits) {
    const EvalWindow& w = windows[i];
    const auto nll = next_token_nll(logits, w.tokens);
    for (size_t p = static_cast<size_t>(first_predicting_row(w)); p < nll.size(); ++p) {
      sums[i].nll += nll[p];
      ++sums[i].scored;
    }
    progress.advance();
  });
  progress.finish();
  return summarise(sums, false, count_tokens(windows), seconds_since(start));
}

ComparisonResult compare_models(const ModelRunner& original, const ModelRunner& candidate,
                                const std::vector<EvalWindow>& windows) {
  check_windows(windows);
  if (original.vocab_size() != candidate.vocab_size())
    throw_error(ErrorKind::BadInput, "cannot compare models with vocabularies of {} and {} tokens",
                original.vocab_size(), candidate.vocab_size());
  const auto start = std::chrono::steady_clock::now();
  std::vector<WindowSums> sums(windows.size());
  const auto tokens = window_tokens(windows);
  const size_t vocab = static_cast<size_t>(original.vocab_size());
  Progress progress("comparing models", windows.size(), true);  // drawn on a terminal only
  original.for_each_window(tokens, [&](size_t i, const RowMatrix& logits_a) {
    const EvalWindow& w = windows[i];
    const RowMatrix logits_b = candidate.logits(w.tokens);
    std::vector<float> lp_a(vocab), lp_b(vocab);
    WindowSums& s = sums[i];
    for (int64_t p = first_predicting_row(w); p + 1 < static_cast<int64_t>(w.tokens.size()); ++p) {
      const auto row_a = row_span(logits_a, p);
      const auto row_b = row_span(logits_b, p);
      log_softmax(row_a, lp_a);
      log_softmax(row_b, lp_b);
      const int32_t target = w.tokens[static_cast<size_t>(p + 1)];
      s.nll -= lp_a[static_cast<size_t>(target)];
      s.nll_candidate -= lp_b[static_cast<size_t>(target)];
      double kl = 0;
      for (size_t v = 0; v < vocab; ++v) kl += std::exp(static_cast<double>(lp_a[v])) * (lp_a[v] - lp_b[v]);
      s.kl += std::max(0.0, kl);
      s.agree += argmax(row_a) == argmax(row_b) ? 1 : 0;
      ++s.scored;
    }
    progress.advance();
  });
  progress.finish();
  const double seconds = seconds_since(start);
  ComparisonResult r;
  r.original = summarise(sums, false, count_tokens(windows), seconds);
  r.candidate = summarise(sums, true, count_tokens(windows), seconds);
  double kl = 0;
  int64_t agree = 0;
  for (const auto& s : sums) {
    kl += s.kl;
    agree += s.agree;
  }
  const double n = static_cast<double>(r.original.tokens_scored);
  r.mean_kl = n > 0 ? kl / n : 0.0;
  r.top1_agreement = n > 0 ? static_cast<double>(agree) / n : 0.0;
  return r;
}

}  // namespace slmopt
