// Incremental decoding through a KvCache against full recomputation, and greedy generation, on synthetic
// models (the bundled models are covered in forward_models_test.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "slmopt/core/error.h"
#include "slmopt/exec/generate.h"
#include "slmopt/exec/log_softmax.h"
#include "slmopt/exec/model_runner.h"
#include "runner_checks.h"
#include "synthetic_llama.h"

namespace slmopt {
namespace {

using testing::expect_incremental_matches_full;
using testing::llama_config;
using testing::make_random_llama;
using testing::random_tokens;

TEST(KvCache, IncrementalDecodingMatchesFullRecompute) {
  const Config plain = llama_config(8, 12, 2, 4, 2, 4, 11);
  Config biased = plain;
  biased.attention_bias = biased.attention_out_bias = biased.tie_word_embeddings = true;
  Config llama3 = llama_config(8, 12, 2, 4, 2, 8, 11);
  llama3.rope_scaling = {RopeScalingType::Llama3, 8.0, 1.0, 4.0, 64};
  Config pruned = llama_config(8, 12, 3, 4, 2, 4, 11);
  pruned.layer_num_heads = {4, 2, 3};
  pruned.layer_num_kv_heads = {2, 1, 3};
  pruned.layer_intermediate_size = {12, 5, 7};
  uint32_t seed = 20;
  for (const Config& c : {plain, biased, llama3, pruned}) {
    const ModelRunner runner(make_random_llama(c, seed++));
    const auto tokens = random_tokens(14, c.vocab_size, seed++);
    expect_incremental_matches_full(runner, tokens, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1});
    expect_incremental_matches_full(runner, tokens, {5, 1, 3, 4, 1});
  }
  // Wider shapes: many linear blocks and a longer context.
  const Config wide = llama_config(128, 384, 2, 4, 2, 32, 300);
  const ModelRunner runner(make_random_llama(wide, seed++));
  expect_incremental_matches_full(runner, random_tokens(96, 300, seed), {64, 1, 1, 30});
}

TEST(KvCache, TruncateThenDecodeAgainMatchesFreshCache) {
  const Config c = llama_config(8, 12, 2, 4, 2, 4, 11);
  const ModelRunner runner(make_random_llama(c, 30));
  const auto prefix = random_tokens(6, 11, 31), tail_a = random_tokens(3, 11, 32), tail_b = random_tokens(3, 11, 33);
  KvCache cache = runner.make_cache(9);
  runner.decode(cache, prefix);
  runner.decode(cache, tail_a);
  cache.truncate(6);
  const RowMatrix reused = runner.decode(cache, tail_b);

  KvCache fresh = runner.make_cache(9);
  runner.decode(fresh, prefix);
  const RowMatrix expected = runner.decode(fresh, tail_b);
  EXPECT_EQ((reused - expected).cwiseAbs().maxCoeff(), 0.0f);  // identical work on identical state
}

TEST(KvCache, RejectsOverflowAndForeignShapes) {
  const ModelRunner runner(make_random_llama(llama_config(8, 12, 2, 4, 2, 4, 11), 34));
  KvCache cache = runner.make_cache(4);
  runner.decode(cache, random_tokens(3, 11, 1));
  try {
    runner.decode(cache, random_tokens(2, 11, 2));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
  }
  EXPECT_EQ(cache.size(), 3);  // a refused call leaves the cache as it was
  EXPECT_THROW(cache.truncate(4), Error);

  const ModelRunner other(make_random_llama(llama_config(8, 12, 2, 4, 1, 4, 11), 35));
  KvCache narrow = other.make_cache(4);
  EXPECT_THROW(runner.decode(narrow, random_tokens(1, 11, 3)), Error);
}

TEST(Generate, GreedyDecodingEqualsArgmaxOfFullRecompute) {
  const Config c = llama_config(16, 24, 2, 4, 2, 4, 13);
  const ModelRunner runner(make_random_llama(c, 36));
  const std::vector<int32_t> prompt = {3, 7};
  const auto generated = generate_greedy(runner, prompt, 12);
  ASSERT_EQ(generated.size(), 12u);
  std::vector<int32_t> sequence = prompt;
  for (int32_t expected : generated) {
    const RowMatrix logits = runner.logits(sequence);
    EXPECT_EQ(argmax(row_span(logits, logits.rows() - 1)), expected);
    sequence.push_back(expected);
  }
  // A stop token ends generation and is included.
  const auto stopped = generate_greedy(runner, prompt, 12, generated[3]);
  const size_t first = static_cast<size_t>(std::find(generated.begin(), generated.end(), generated[3]) - generated.begin());
  ASSERT_EQ(stopped.size(), first + 1);
  EXPECT_TRUE(std::equal(stopped.begin(), stopped.end(), generated.begin()));
}

}  // namespace
}  // namespace slmopt
