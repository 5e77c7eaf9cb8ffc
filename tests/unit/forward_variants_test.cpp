// Every variant of the decoder description on small in-memory random models: ModelRunner against the
// independent double-precision reference (forward_reference.h), KV-cache decoding against full recomputation
// (past sliding windows too), and bit-identity across thread counts. Each variant is a family's block shape
// (Phi-2, Phi-3 LongRoPE, Qwen3, Gemma-2/3, SmolLM3, Granite, OLMo-2, GPT-2, Mistral's window) on toy sizes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "forward_reference.h"
#include "slmopt/core/error.h"
#include "slmopt/core/parallel.h"
#include "slmopt/exec/model_runner.h"
#include "slmopt/ir/random_weights.h"
#include "runner_checks.h"
#include "synthetic_llama.h"

namespace slmopt {
namespace {

using testing::bit_identical;
using testing::expect_matches_reference;
using testing::llama_config;
using testing::random_tokens;

struct Variant {
  std::string name;
  Config config;
  size_t window = 12;         // tokens compared against the reference
  bool decode_exact = true;   // KV-cache decoding reproduces the full pass (not LongRoPE past its threshold)
};

Config base(int64_t layers = 3) { return llama_config(16, 24, layers, 4, 2, 4, 37); }

Config phi2() {
  Config c = llama_config(16, 32, 2, 4, 4, 4, 37);
  c.norm_kind = NormKind::LayerNorm;
  c.norm_bias = true;
  c.residual_layout = ResidualLayout::Parallel;
  c.mlp_kind = MlpKind::GeluTanh;
  c.attention_bias = c.attention_out_bias = c.mlp_bias = true;
  c.lm_head_bias = true;
  c.rotary_dim = 2;  // partial rotary: half of each 4-value head
  return c;
}

Config phi3() {
  Config c = llama_config(16, 24, 2, 2, 2, 8, 37);
  c.rope_scaling.type = RopeScalingType::LongRope;
  c.rope_scaling.original_max_position = 16;
  c.rope_scaling.short_factor = {1.0, 1.3, 2.1, 4.0};
  c.rope_scaling.long_factor = {1.1, 2.5, 6.0, 19.0};
  c.rope_scaling.attention_factor = 1.19;
  c.max_position = 64;
  return c;
}

Config qwen3() {
  Config c = base();
  c.head_dim = 8;  // head_dim independent of hidden / heads, as Qwen3's configs have it
  c.qk_norm = QkNormKind::PerHead;
  return c;
}

Config gemma2() {
  Config c = base(4);
  c.norm_unit_offset = true;
  c.norm_placement = NormPlacement::Sandwich;
  c.mlp_kind = MlpKind::GeGluTanh;
  c.tie_word_embeddings = true;
  c.attn_scale = 1.0 / std::sqrt(6.0);  // query_pre_attn_scalar 6
  c.attn_softcap = 1.5;
  c.final_logit_softcap = 2.5;
  c.sliding_window = 4;
  c.layer_sliding = {1, 0, 1, 0};
  c.embedding_scale = std::sqrt(16.0);
  return c;
}

Config gemma3() {
  Config c = base(3);
  c.head_dim = 8;
  c.norm_unit_offset = true;
  c.norm_placement = NormPlacement::Sandwich;
  c.mlp_kind = MlpKind::GeGluTanh;
  c.qk_norm = QkNormKind::PerHead;
  c.tie_word_embeddings = true;
  c.sliding_window = 5;
  c.layer_sliding = {1, 1, 0};
  c.rope_theta = 1e6;
  c.rope_local_theta = 1e4;
  c.rope_scaling.type = RopeScalingType::Linear;
  c.rope_scaling.factor = 8;
  c.embedding_scale = std::sqrt(16.0);
  return c;
}

Config smollm3() {
  Config c = base(4);
  c.layer_no_rope = {0, 0, 0, 1};  // every 4th layer without rotation
  return c;
}

Config granite() {
  Config c = base();
  c.embedding_scale = 12.0;
  c.residual_scale = 0.22;
  c.attn_scale = 0.35;
  c.logit_scale = 1.0 / 8.0;
  return c;
}

Config olmo2() {
  Config c = base();
  c.norm_placement = NormPlacement::Post;
  c.qk_norm = QkNormKind::Whole;
  return c;
}

Config gpt2() {
  Config c = llama_config(16, 64, 2, 4, 4, 4, 37);
  c.norm_kind = NormKind::LayerNorm;
  c.norm_bias = true;
  c.position_kind = PositionKind::Learned;
  c.max_position = 32;
  c.mlp_kind = MlpKind::GeluTanh;
  c.attention_bias = c.attention_out_bias = c.mlp_bias = true;
  c.tie_word_embeddings = true;
  return c;
}

Config mistral() {
  Config c = base();
  c.sliding_window = 5;
  return c;
}

std::vector<Variant> variants() {
  return {
      {"phi2", phi2()},
      {"phi3_short_factors", phi3()},
      {"phi3_long_factors", phi3(), 20, false},
      {"qwen3", qwen3()},
      {"gemma2", gemma2(), 13},
      {"gemma3", gemma3(), 13},
      {"smollm3", smollm3()},
      {"granite", granite()},
      {"olmo2", olmo2()},
      {"gpt2", gpt2()},
      {"mistral_window", mistral(), 14},
      {"llama3_partial_rotary", [] {
         Config c = llama_config(16, 24, 2, 2, 1, 8, 37);
         c.rotary_dim = 4;
         c.rope_scaling = {RopeScalingType::Llama3, 8.0, 1.0, 4.0, 64};
         return c;
       }()},
  };
}

class ForwardVariant : public ::testing::TestWithParam<Variant> {};

TEST_P(ForwardVariant, MatchesTheDoublePrecisionReference) {
  const Variant& v = GetParam();
  const Model model = random_model(v.config, DType::F32, 7);
  const auto tokens = random_tokens(static_cast<int64_t>(v.window), v.config.vocab_size, 11);
  expect_matches_reference(ModelRunner(model).logits(tokens), testing::reference_logits(model, tokens), 1e-5);
}

TEST_P(ForwardVariant, MatchesTheReferenceWithBf16Weights) {
  const Variant& v = GetParam();
  const Model model = random_model(v.config, DType::BF16, 8);
  const auto tokens = random_tokens(static_cast<int64_t>(v.window), v.config.vocab_size, 12);
  expect_matches_reference(ModelRunner(model).logits(tokens), testing::reference_logits(model, tokens), 1e-5);
}

// Chunked decoding through a KV cache equals one full pass (|Δ| ≤ 1e-5 · max|logit|), including chunks that
// start and end past a sliding window.
TEST_P(ForwardVariant, CachedDecodingMatchesFullRecompute) {
  const Variant& v = GetParam();
  if (!v.decode_exact) GTEST_SKIP() << "LongRoPE switches factor sets by each call's last position (see rope_frequencies.h)";
  const Model model = random_model(v.config, DType::F32, 9);
  const ModelRunner runner(model);
  const auto tokens = random_tokens(static_cast<int64_t>(v.window) + 3, v.config.vocab_size, 13);
  testing::expect_incremental_matches_full(runner, tokens, {1, 1, 4, 1, 2, tokens.size() - 9});
}

// The block API composes to the whole window, bit for bit.
TEST_P(ForwardVariant, BlockApiEqualsWholeWindow) {
  const Variant& v = GetParam();
  const Model model = random_model(v.config, DType::F32, 10);
  const ModelRunner runner(model);
  const auto tokens = random_tokens(static_cast<int64_t>(v.window), v.config.vocab_size, 14);
  RowMatrix hidden = runner.embed(tokens);
  for (int64_t l = 0; l < runner.layer_count(); ++l) runner.run_block(l, hidden);
  EXPECT_TRUE(bit_identical(runner.final_logits(hidden), runner.logits(tokens)));
}

INSTANTIATE_TEST_SUITE_P(Decoders, ForwardVariant, ::testing::ValuesIn(variants()),
                         [](const ::testing::TestParamInfo<Variant>& param) { return param.param.name; });

TEST(ForwardVariants, LongRopeSwitchesFactorSetsAtTheOriginalContext) {
  // Within original_max_position the short factors apply, beyond it the long ones, for the whole window.
  const Config c = phi3();
  const Model model = random_model(c, DType::F32, 21);
  const ModelRunner runner(model);
  const auto tokens = random_tokens(20, c.vocab_size, 22);
  const RowMatrix within = runner.logits(std::span(tokens).first(16));
  const RowMatrix beyond = runner.logits(tokens);
  // The first 16 rows see the same tokens; only the factor set differs.
  EXPECT_GT((beyond.topRows(16) - within).cwiseAbs().maxCoeff(), 1e-3f);
}

TEST(ForwardVariants, SlidingWindowLimitsWhatAQuerySees) {
  // With a window of 5 on every layer, logits at position t depend only on tokens t−(5−1)·L.. t; changing an
  // early token must leave the last position of a long window unchanged (2 layers: receptive field 9).
  Config c = mistral();
  c.num_layers = 2;
  const Model model = random_model(c, DType::F32, 23);
  const ModelRunner runner(model);
  auto tokens = random_tokens(14, c.vocab_size, 24);
  const RowMatrix before = runner.logits(tokens);
  tokens[0] = (tokens[0] + 1) % static_cast<int32_t>(c.vocab_size);
  const RowMatrix after = runner.logits(tokens);
  EXPECT_TRUE(bit_identical(before.bottomRows(4), after.bottomRows(4)));
  EXPECT_GT((before.topRows(4) - after.topRows(4)).cwiseAbs().maxCoeff(), 1e-4f);
}

TEST(ForwardVariants, ObserverSeesUpAndDownWithoutAGate) {
  const Model model = random_model(gpt2(), DType::F32, 25);
  const ModelRunner runner(model);
  class Names : public LinearObserver {
   public:
    void on_linear(const LinearActivation& a) override { seen.push_back(a.weight); }
    std::vector<std::string> seen;
  } names_seen;
  RunOptions options;
  options.observer = &names_seen;
  runner.logits(random_tokens(3, 37, 26), options);
  const std::vector<std::string> want = {names::q_proj(0), names::k_proj(0), names::v_proj(0), names::o_proj(0),
                                         names::up_proj(0), names::down_proj(0)};
  ASSERT_EQ(names_seen.seen.size(), 2 * want.size() + 1);
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(names_seen.seen[i], want[i]);
  EXPECT_EQ(names_seen.seen.back(), names::kEmbedTokens);  // the tied head
}

TEST(ForwardVariants, LearnedPositionsRefuseWindowsBeyondTheTable) {
  const Model model = random_model(gpt2(), DType::F32, 27);
  const ModelRunner runner(model);
  EXPECT_THROW(runner.logits(random_tokens(33, 37, 28)), Error);
}

// Shapes large enough that every parallel path splits, on a description exercising most options at once:
// logits, batches and cached decoding are bit-identical for 1, 2 and 3 threads.
TEST(ForwardVariants, BitIdenticalForAnyThreadCount) {
  Config c = llama_config(128, 256, 3, 4, 2, 32, 300);
  c.norm_unit_offset = true;
  c.norm_placement = NormPlacement::Sandwich;
  c.mlp_kind = MlpKind::GeGluTanh;
  c.qk_norm = QkNormKind::PerHead;
  c.attn_softcap = 20;
  c.final_logit_softcap = 15;
  c.sliding_window = 24;
  c.layer_sliding = {1, 0, 1};
  c.rope_local_theta = 1e4;
  c.rotary_dim = 16;
  c.embedding_scale = std::sqrt(128.0);
  const Model model = random_model(c, DType::BF16, 29);
  const ModelRunner runner(model);
  testing::expect_same_bits_at_any_thread_count(runner, {random_tokens(80, 300, 1), random_tokens(48, 300, 2)}, 50);
}

}  // namespace
}  // namespace slmopt
