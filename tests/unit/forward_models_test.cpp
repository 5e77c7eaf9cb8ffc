// The forward pass on the bundled models, loaded through io/ and tokenized through text/: greedy decoding
// makes sense, incremental decoding matches full recomputation, perplexity on held-out text is what a working
// model gives, and the thread count changes no bit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "slmopt/core/parallel.h"
#include "slmopt/exec/generate.h"
#include "slmopt/exec/log_softmax.h"
#include "slmopt/exec/model_runner.h"
#include "slmopt/io/model_loader.h"
#include "slmopt/text/tokenizer.h"
#include "runner_checks.h"
#include "test_support.h"

namespace slmopt {
namespace {

struct Bundled {
  Model model;
  ModelRunner runner;
  Tokenizer tokenizer;
  explicit Bundled(const std::string& folder)
      : model(load_model(testing::model_path(folder))), runner(model), tokenizer(model.vocab) {}
};

const Bundled& tinystories() {
  static const Bundled b("tinystories-656k");
  return b;
}
const Bundled& kjv() {
  static const Bundled b("llama-5m-kjv");
  return b;
}

// The first `chars` characters of a held-out text (cut at a line end), tokenized with the model's BOS rule.
std::vector<int32_t> eval_tokens(const Bundled& b, const std::string& file, size_t chars, size_t max_tokens) {
  std::ifstream in(testing::data_path(file));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  text = text.substr(0, text.rfind('\n', chars));
  auto tokens = b.tokenizer.encode(text, /*add_special=*/true);
  if (tokens.size() > max_tokens) tokens.resize(max_tokens);
  return tokens;
}

double mean_nll(const ModelRunner& runner, const std::vector<int32_t>& tokens) {
  const auto nll = next_token_nll(runner.logits(tokens), tokens);
  double sum = 0;
  for (double v : nll) sum += v;
  return sum / static_cast<double>(nll.size());
}

TEST(BundledModels, TinyStoriesGreedyStoryFromBosStartsOnceUponATime) {
  const Bundled& b = tinystories();
  ASSERT_EQ(b.tokenizer.bos_id(), 1);
  const std::vector<int32_t> bos = {1};
  const auto story = generate_greedy(b.runner, bos, 40, b.tokenizer.eos_id());
  const std::string text = b.tokenizer.decode(story, /*skip_special=*/true);
  EXPECT_EQ(text.rfind("Once upon a time", 0), 0u) << text;
  EXPECT_GT(text.size(), 100u) << text;
}

TEST(BundledModels, IncrementalDecodingMatchesFullRecompute) {
  for (const Bundled* b : {&tinystories(), &kjv()}) {
    const std::string file = b == &kjv() ? "kjv-eval.txt" : "tinystories-eval.txt";
    const auto tokens = eval_tokens(*b, file, 4000, 100);
    ASSERT_EQ(tokens.size(), 100u);
    testing::expect_incremental_matches_full(b->runner, tokens, {1, 1, 1, 1, 1, 1, 1, 1, 40, 3, 49});
  }
}

TEST(BundledModels, HeldOutPerplexityIsThatOfATrainedModel) {
  // Measured: tinystories-656k 30.86 (512 tokens), llama-5m-kjv 52.11 (256 tokens) on these windows; the bounds
  // leave ~30 % room for a changed summation order, while a broken pass (wrong RoPE layout, misplaced norm
  // weight, wrong GQA grouping) lands far above them.
  const auto ts = eval_tokens(tinystories(), "tinystories-eval.txt", 6000, 512);
  const auto bible = eval_tokens(kjv(), "kjv-eval.txt", 6000, 256);
  const double ppl_ts = std::exp(mean_nll(tinystories().runner, ts));
  const double ppl_kjv = std::exp(mean_nll(kjv().runner, bible));
  EXPECT_LT(ppl_ts, 40.0) << ts.size() << " tokens";
  EXPECT_GT(ppl_ts, 20.0) << ts.size() << " tokens";
  EXPECT_LT(ppl_kjv, 70.0) << bible.size() << " tokens";
  EXPECT_GT(ppl_kjv, 35.0) << bible.size() << " tokens";
}

TEST(BundledModels, ThreadCountChangesNoBit) {
  const Bundled& b = kjv();
  const auto tokens = eval_tokens(b, "kjv-eval.txt", 4000, 256);
  set_thread_count(1);
  const RowMatrix one = b.runner.logits(tokens);
  set_thread_count(3);
  const RowMatrix three = b.runner.logits(tokens);
  set_thread_count(0);
  ASSERT_EQ(one.size(), three.size());
  EXPECT_EQ(std::memcmp(one.data(), three.data(), sizeof(float) * static_cast<size_t>(one.size())), 0);
}

}  // namespace
}  // namespace slmopt
