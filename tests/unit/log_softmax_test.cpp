#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "slmopt/exec/log_softmax.h"

namespace slmopt {
namespace {

TEST(LogSoftmax, LogsumexpIsStableForLargeAndTinyValues) {
  const std::vector<float> large = {1000.0f, 1000.0f};
  EXPECT_NEAR(logsumexp(large), 1000.0 + std::log(2.0), 1e-9);
  const std::vector<float> tiny = {-1000.0f, -1001.0f};
  EXPECT_NEAR(logsumexp(tiny), -1000.0 + std::log1p(std::exp(-1.0)), 1e-9);
  const std::vector<float> all_masked = {-INFINITY, -INFINITY};
  EXPECT_EQ(logsumexp(all_masked), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(logsumexp(std::span<const float>()), -std::numeric_limits<double>::infinity());
}

TEST(LogSoftmax, RowNormalisesAndTokenLogProbAgrees) {
  const std::vector<float> row = {0.5f, -1.0f, 2.0f, 0.0f};
  std::vector<float> out(row.size());
  log_softmax(row, out);
  double total = 0;
  for (float v : out) total += std::exp(static_cast<double>(v));
  EXPECT_NEAR(total, 1.0, 1e-6);
  const double z = std::exp(0.5) + std::exp(-1.0) + std::exp(2.0) + 1.0;
  EXPECT_NEAR(out[2], 2.0 - std::log(z), 1e-6);
  EXPECT_NEAR(token_log_prob(row, 1), -1.0 - std::log(z), 1e-12);
}

TEST(LogSoftmax, NextTokenNllUsesRowIForTokenIPlusOne) {
  RowMatrix logits(3, 3);
  logits << 0, 1, 2,   //
      3, 0, 0,         //
      9, 9, 9;         // the last row predicts nothing inside the window
  const std::vector<int32_t> tokens = {2, 1, 0};
  const auto nll = next_token_nll(logits, tokens);
  ASSERT_EQ(nll.size(), 2u);
  EXPECT_NEAR(nll[0], std::log(1 + std::exp(1.0) + std::exp(2.0)) - 1.0, 1e-12);
  EXPECT_NEAR(nll[1], std::log(std::exp(3.0) + 2.0) - 3.0, 1e-12);
}

TEST(LogSoftmax, TopKIsSortedWithLowerIdsWinningTies) {
  const std::vector<float> row = {1.0f, 3.0f, 3.0f, -2.0f, 2.0f};
  const auto top = top_k_log_probs(row, 3);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].token, 1);
  EXPECT_EQ(top[1].token, 2);
  EXPECT_EQ(top[2].token, 4);
  EXPECT_NEAR(top[2].log_prob, 2.0 - logsumexp(row), 1e-6);
  EXPECT_EQ(top_k_log_probs(row, 99).size(), 5u);
  EXPECT_EQ(argmax(row), 1);
  EXPECT_EQ(argmax(std::span<const float>()), -1);
}

}  // namespace
}  // namespace slmopt
