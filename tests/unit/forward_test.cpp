// ModelRunner against an independent double-precision reference (forward_reference.h) on tiny random models
// covering GQA, biases, tied embeddings, RoPE scaling, per-layer widths and half-precision storage; plus the
// structural promises: masks, the block API, the activation observer, determinism across thread counts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "forward_reference.h"
#include "slmopt/core/error.h"
#include "slmopt/core/parallel.h"
#include "slmopt/exec/kernels.h"
#include "slmopt/exec/model_runner.h"
#include "slmopt/exec/rope.h"
#include "slmopt/ir/tensor_names.h"
#include "runner_checks.h"
#include "synthetic_llama.h"

namespace slmopt {
namespace {

using testing::bit_identical;
using testing::expect_matches_reference;
using testing::llama_config;
using testing::make_random_llama;
using testing::random_tokens;

// The brief's tiny model: hidden 8, 2 layers, 4 heads sharing 2 KV heads, head_dim 4, vocab 11.
Config tiny_config() { return llama_config(8, 12, 2, 4, 2, 4, 11); }

void expect_reference_logits(const Model& model, size_t window, uint32_t seed) {
  const auto tokens = random_tokens(static_cast<int64_t>(window), model.config.vocab_size, seed);
  const ModelRunner runner(model);
  expect_matches_reference(runner.logits(tokens), testing::reference_logits(model, tokens), 1e-5);
}

TEST(ForwardReference, MatchesDoubleLoopsWithGroupedQueryAttention) {
  expect_reference_logits(make_random_llama(tiny_config(), 1), 9, 100);
}

TEST(ForwardReference, MatchesWithBiasesTiedEmbeddingAndLinearRopeScaling) {
  Config c = tiny_config();
  c.attention_bias = true;
  c.attention_out_bias = true;
  c.tie_word_embeddings = true;
  c.rope_scaling.type = RopeScalingType::Linear;
  c.rope_scaling.factor = 2.5;
  expect_reference_logits(make_random_llama(c, 2), 10, 101);
}

TEST(ForwardReference, MatchesWithLlama3RopeScaling) {
  Config c = llama_config(8, 12, 2, 4, 2, 8, 11);
  c.rope_scaling = {RopeScalingType::Llama3, 8.0, 1.0, 4.0, 64};
  expect_reference_logits(make_random_llama(c, 3), 12, 102);
}

TEST(ForwardReference, MatchesWithPerLayerHeadAndFfnCounts) {
  Config c = llama_config(8, 12, 3, 4, 2, 4, 11);
  c.layer_num_heads = {4, 2, 3};
  c.layer_num_kv_heads = {2, 1, 3};
  c.layer_intermediate_size = {12, 5, 7};
  expect_reference_logits(make_random_llama(c, 4), 8, 103);
}

TEST(ForwardReference, MatchesWithHalfPrecisionWeights) {
  expect_reference_logits(make_random_llama(tiny_config(), 5, DType::BF16), 7, 104);
  expect_reference_logits(make_random_llama(tiny_config(), 6, DType::F16), 7, 105);
}

TEST(ForwardReference, MatchesAcrossManyLinearBlocksAndLongerWindows) {
  // Widths above kLinearBlockCols and a window long enough for the parallel paths.
  Config c = llama_config(96, 160, 2, 6, 2, 16, 150);
  c.attention_bias = true;
  expect_reference_logits(make_random_llama(c, 7), 40, 106);
}

TEST(Rope, InverseFrequenciesFollowTheScalingRules) {
  Config c = llama_config(8, 12, 1, 1, 1, 8, 11);  // inv_freq = 1, 0.1, 0.01, 0.001
  auto plain = rope_inverse_frequencies(c);
  ASSERT_EQ(plain.size(), 4u);
  EXPECT_NEAR(plain[0], 1.0, 1e-15);
  EXPECT_NEAR(plain[1], 0.1, 1e-15);
  EXPECT_NEAR(plain[3], 0.001, 1e-15);

  c.rope_scaling = {RopeScalingType::Linear, 4.0, 1.0, 4.0, 8192};
  EXPECT_NEAR(rope_inverse_frequencies(c)[1], 0.025, 1e-15);

  // llama3 with original context 64: wavelengths 6.3 (< 64/4: kept), 62.8 (between: smoothed),
  // 628 and 6283 (> 64/1: divided by 8).
  c.rope_scaling = {RopeScalingType::Llama3, 8.0, 1.0, 4.0, 64};
  auto scaled = rope_inverse_frequencies(c);
  EXPECT_NEAR(scaled[0], 1.0, 1e-15);
  const double smooth = (64.0 / (2 * M_PI / 0.1) - 1.0) / 3.0;
  EXPECT_NEAR(scaled[1], (1 - smooth) * 0.1 / 8 + smooth * 0.1, 1e-15);
  EXPECT_NEAR(scaled[2], 0.01 / 8, 1e-16);
  EXPECT_NEAR(scaled[3], 0.001 / 8, 1e-17);
}

TEST(Rope, RotatesPairsHalfAHeadApart) {
  Config c = llama_config(8, 12, 1, 1, 1, 4, 11);  // inv_freq = 1, 0.01
  RotaryEmbedding rope(c);
  float x[4] = {1, 2, 3, 4};  // pairs (1, 3) and (2, 4)
  rope.apply(x, 1, 2);
  EXPECT_NEAR(x[0], 1 * std::cos(2.0) - 3 * std::sin(2.0), 1e-6);
  EXPECT_NEAR(x[2], 3 * std::cos(2.0) + 1 * std::sin(2.0), 1e-6);
  EXPECT_NEAR(x[1], 2 * std::cos(0.02) - 4 * std::sin(0.02), 1e-6);
  EXPECT_NEAR(x[3], 4 * std::cos(0.02) + 2 * std::sin(0.02), 1e-6);

  // Positions past the tabulated range (max_position) get the very same values, computed on the fly.
  Config short_context = c;
  short_context.max_position = 3;
  const RotaryEmbedding tabulated(c), computed(short_context);
  float a[8] = {1, 2, 3, 4, 5, 6, 7, 8}, b[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  tabulated.apply(a, 2, 50);
  computed.apply(b, 2, 50);
  EXPECT_EQ(std::memcmp(a, b, sizeof a), 0);
  EXPECT_NEAR(b[4], 5 * std::cos(50.0) - 7 * std::sin(50.0), 1e-5);
}

TEST(Kernels, LinearMatchesLoopsAcrossBlockBoundaries) {
  RowMatrix x = RowMatrix::Random(5, 33), w = RowMatrix::Random(150, 33), y;
  Eigen::VectorXf bias = Eigen::VectorXf::Random(150);
  linear(x, w, bias.data(), y);
  ASSERT_EQ(y.rows(), 5);
  ASSERT_EQ(y.cols(), 150);
  for (int64_t t = 0; t < 5; ++t)
    for (int64_t o = 0; o < 150; ++o) {
      double s = bias[o];
      for (int64_t i = 0; i < 33; ++i) s += static_cast<double>(x(t, i)) * w(o, i);
      EXPECT_NEAR(y(t, o), s, 1e-5) << t << "," << o;
    }
}

TEST(Kernels, RmsNormNormalisesThenWeights) {
  RowMatrix x(1, 4);
  x << 1, -2, 3, -4;  // mean square 7.5
  Eigen::VectorXf w(4);
  w << 1, 2, 0.5f, 1;
  RowMatrix y;
  rms_norm(x, w, 1e-5f, y);
  const double inv = 1 / std::sqrt(7.5 + 1e-5);
  EXPECT_NEAR(y(0, 0), 1 * inv, 1e-6);
  EXPECT_NEAR(y(0, 1), -4 * inv, 1e-6);
  EXPECT_NEAR(y(0, 2), 1.5 * inv, 1e-6);
  EXPECT_NEAR(y(0, 3), -4 * inv, 1e-6);
}

// A head mask on head h must equal zeroing o_proj's input columns h·hd..(h+1)·hd in an unmasked copy; an FFN
// channel mask must equal zeroing that column of down_proj.
TEST(Masks, HeadAndChannelMasksEqualZeroedWeightColumns) {
  const Config c = tiny_config();
  const Model model = make_random_llama(c, 8);
  const auto tokens = random_tokens(9, c.vocab_size, 107);
  const int64_t layer = 1, head = 2, channel = 5, hd = c.head_dim;

  ForwardMasks masks;
  masks.heads.assign(static_cast<size_t>(c.num_layers), {});
  masks.heads[layer] = {1, 1, 0, 1};
  masks.ffn_channels.assign(static_cast<size_t>(c.num_layers), {});
  masks.ffn_channels[0].assign(static_cast<size_t>(c.intermediate_size), 1.0f);
  masks.ffn_channels[0][channel] = 0;
  RunOptions options;
  options.masks = &masks;
  const RowMatrix masked = ModelRunner(model).logits(tokens, options);

  Model zeroed = model;
  auto o = zeroed.tensor(names::o_proj(layer)).to_f32();
  for (int64_t r = 0; r < c.hidden_size; ++r)
    for (int64_t col = head * hd; col < (head + 1) * hd; ++col) o[r * c.num_heads * hd + col] = 0;
  zeroed.set(Tensor::from_f32(names::o_proj(layer), {c.hidden_size, c.num_heads * hd}, o));
  auto down = zeroed.tensor(names::down_proj(0)).to_f32();
  for (int64_t r = 0; r < c.hidden_size; ++r) down[r * c.intermediate_size + channel] = 0;
  zeroed.set(Tensor::from_f32(names::down_proj(0), {c.hidden_size, c.intermediate_size}, down));
  const RowMatrix expected = ModelRunner(zeroed).logits(tokens);

  const RowMatrix unmasked = ModelRunner(model).logits(tokens);
  EXPECT_GT((unmasked - expected).cwiseAbs().maxCoeff(), 1e-3f);  // the masks do something
  // Same products with the zero moved from one operand to the other: equal up to the sign of zero terms.
  EXPECT_LE((masked - expected).cwiseAbs().maxCoeff(), 1e-6f);
}

TEST(Masks, WrongSizesAreRejected) {
  const Model model = make_random_llama(tiny_config(), 9);
  ForwardMasks masks;
  masks.heads = {{1, 1, 1, 1}, {1, 0}};  // layer 1 has 4 heads
  RunOptions options;
  options.masks = &masks;
  const auto tokens = random_tokens(3, 11, 1);
  EXPECT_THROW(ModelRunner(model).logits(tokens, options), Error);
}

TEST(BlockApi, EmbedRunBlockFinalLogitsEqualsWholeWindow) {
  Config c = tiny_config();
  c.attention_bias = true;
  const Model model = make_random_llama(c, 10);
  const ModelRunner runner(model);
  const auto tokens = random_tokens(11, c.vocab_size, 108);
  RowMatrix hidden = runner.embed(tokens);
  std::vector<int64_t> positions(tokens.size());
  for (size_t i = 0; i < positions.size(); ++i) positions[i] = static_cast<int64_t>(i);
  for (int64_t l = 0; l < runner.layer_count(); ++l) runner.run_block(l, hidden, positions);
  EXPECT_TRUE(bit_identical(runner.final_logits(hidden), runner.logits(tokens)));

  // RoPE scores depend only on position differences: shifting every position leaves the block outputs
  // unchanged up to rounding, while spreading them apart changes them.
  RowMatrix shifted = runner.embed(tokens);
  std::vector<int64_t> shifted_positions = positions, spread_positions = positions;
  for (auto& p : shifted_positions) p += 5;
  for (auto& p : spread_positions) p *= 3;
  for (int64_t l = 0; l < runner.layer_count(); ++l) runner.run_block(l, shifted, shifted_positions);
  EXPECT_LT((shifted - hidden).cwiseAbs().maxCoeff(), 1e-5f);
  RowMatrix spread = runner.embed(tokens);
  for (int64_t l = 0; l < runner.layer_count(); ++l) runner.run_block(l, spread, spread_positions);
  EXPECT_GT((spread - hidden).cwiseAbs().maxCoeff(), 1e-3f);
}

TEST(BlockApi, RunBlockWindowsEqualsOneWindowAtATime) {
  const Config c = llama_config(96, 160, 2, 6, 2, 16, 150);
  const ModelRunner runner(make_random_llama(c, 18));
  std::vector<RowMatrix> hiddens, expected;
  for (uint32_t w = 0; w < 5; ++w) {
    hiddens.push_back(runner.embed(random_tokens(20 + w, c.vocab_size, 200 + w)));
    expected.push_back(hiddens.back());
    runner.run_block(0, expected.back());
  }
  set_thread_count(3);
  runner.run_block_windows(0, hiddens);
  set_thread_count(0);
  for (size_t w = 0; w < hiddens.size(); ++w) EXPECT_TRUE(bit_identical(hiddens[w], expected[w])) << w;
}

TEST(BlockApi, ReloadLayerPicksUpReplacedWeights) {
  const Config c = tiny_config();
  Model model = make_random_llama(c, 11);
  ModelRunner runner(model);
  const auto tokens = random_tokens(6, c.vocab_size, 109);
  const Model other = make_random_llama(c, 12);
  for (const std::string& name : {names::q_proj(1), names::down_proj(1), names::attn_norm(1)})
    model.set(other.tensor(name));
  runner.reload_layer(model, 1);
  expect_matches_reference(runner.logits(tokens), testing::reference_logits(model, tokens), 1e-5);
}

struct RecordedCall {
  int64_t layer;
  std::string weight;
  RowMatrix input, output;
};

class RecordingObserver : public LinearObserver {
 public:
  explicit RecordingObserver(bool outputs) : outputs_(outputs) {}
  void on_linear(const LinearActivation& a) override {
    calls.push_back({a.layer, a.weight, a.input, a.output ? *a.output : RowMatrix()});
  }
  bool wants_output() const override { return outputs_; }
  std::vector<RecordedCall> calls;

 private:
  bool outputs_;
};

TEST(Observer, SeesEveryLinearInputInExecutionOrder) {
  Config c = tiny_config();
  c.attention_bias = true;
  const Model model = make_random_llama(c, 13);
  const ModelRunner runner(model);
  const auto tokens = random_tokens(5, c.vocab_size, 110);
  RecordingObserver observer(true);
  RunOptions options;
  options.observer = &observer;
  const RowMatrix logits = runner.logits(tokens, options);

  ASSERT_EQ(observer.calls.size(), 7u * 2 + 1);
  std::vector<std::string> expected_names;
  for (int64_t l = 0; l < 2; ++l)
    for (const auto& n : {names::q_proj(l), names::k_proj(l), names::v_proj(l), names::o_proj(l),
                          names::gate_proj(l), names::up_proj(l), names::down_proj(l)})
      expected_names.push_back(n);
  for (size_t i = 0; i < expected_names.size(); ++i) {
    EXPECT_EQ(observer.calls[i].weight, expected_names[i]);
    EXPECT_EQ(observer.calls[i].layer, static_cast<int64_t>(i / 7));
    EXPECT_EQ(observer.calls[i].input.rows(), 5);
  }
  EXPECT_EQ(observer.calls.back().layer, kOutputLayer);
  EXPECT_EQ(observer.calls.back().weight, names::kLmHead);
  EXPECT_TRUE(bit_identical(observer.calls.back().output, logits));

  // Layer 0's q_proj input is the normalised embedding; its output adds the bias.
  const auto emb = testing::tensor_as_double(model, names::kEmbedTokens);
  const auto norm = testing::tensor_as_double(model, names::attn_norm(0));
  const auto wq = testing::tensor_as_double(model, names::q_proj(0));
  const auto bq = testing::tensor_as_double(model, names::q_bias(0));
  for (size_t t = 0; t < tokens.size(); ++t) {
    std::vector<double> x(emb.begin() + tokens[t] * 8, emb.begin() + tokens[t] * 8 + 8);
    const auto normed = testing::reference_rms_norm(x, norm, c.norm_eps);
    const auto q = testing::reference_matvec(wq, normed, &bq);
    for (size_t i = 0; i < normed.size(); ++i) EXPECT_NEAR(observer.calls[0].input(t, i), normed[i], 1e-6);
    for (size_t i = 0; i < q.size(); ++i) EXPECT_NEAR(observer.calls[0].output(t, i), q[i], 1e-5);
  }
  // k and v see the same input as q.
  EXPECT_TRUE(bit_identical(observer.calls[1].input, observer.calls[0].input));
}

TEST(Observer, SeesMaskedInputsAndBatchesInWindowOrder) {
  const Config c = tiny_config();
  const Model model = make_random_llama(c, 14);
  const ModelRunner runner(model);
  ForwardMasks masks;
  masks.heads = {{1, 0, 1, 1}, {}};
  masks.ffn_channels = {{}, std::vector<float>(12, 1.0f)};
  masks.ffn_channels[1][3] = 0;
  RecordingObserver observer(false);
  RunOptions options{&masks, &observer};
  const std::vector<std::vector<int32_t>> windows = {random_tokens(4, 11, 1), random_tokens(6, 11, 2),
                                                     random_tokens(5, 11, 3)};
  runner.logits_batch(windows, options);
  ASSERT_EQ(observer.calls.size(), 3u * 15);
  for (size_t w = 0; w < 3; ++w) {
    const auto& o_call = observer.calls[w * 15 + 3];
    const auto& down_call = observer.calls[w * 15 + 13];
    ASSERT_EQ(o_call.weight, names::o_proj(0));
    ASSERT_EQ(down_call.weight, names::down_proj(1));
    EXPECT_EQ(o_call.input.rows(), static_cast<int64_t>(windows[w].size()));
    EXPECT_EQ(o_call.input.middleCols(4, 4).cwiseAbs().maxCoeff(), 0.0f);  // head 1 masked
    EXPECT_GT(o_call.input.middleCols(0, 4).cwiseAbs().maxCoeff(), 0.0f);
    EXPECT_EQ(down_call.input.col(3).cwiseAbs().maxCoeff(), 0.0f);
    EXPECT_EQ(o_call.output.size(), 0);  // outputs were not requested
  }
}

TEST(Determinism, LogitsAreBitIdenticalForAnyThreadCountAndInBatches) {
  // Shapes large enough that every parallel path (linear blocks, heads, rows, windows) really splits.
  const Config c = llama_config(128, 384, 2, 4, 2, 32, 500);
  const Model model = make_random_llama(c, 15);
  const ModelRunner runner(model);
  testing::expect_same_bits_at_any_thread_count(
      runner, {random_tokens(64, 500, 1), random_tokens(48, 500, 2), random_tokens(64, 500, 3)}, 40);
}

TEST(Errors, BadTokensFamiliesAndTensorsAreReported) {
  const Model model = make_random_llama(tiny_config(), 16);
  const ModelRunner runner(model);
  const std::vector<int32_t> bad = {1, 11};
  try {
    runner.logits(bad);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput);
    EXPECT_NE(std::string(e.what()).find("11"), std::string::npos);
  }
  // The family tag means nothing to the forward pass; the description does: LayerNorm with biases needs bias
  // tensors this llama model does not have.
  Model described = model;
  described.config.family = "gpt2";
  EXPECT_TRUE(bit_identical(ModelRunner(described).logits(std::vector<int32_t>{1, 2}), runner.logits(std::vector<int32_t>{1, 2})));
  described.config.norm_kind = NormKind::LayerNorm;
  described.config.norm_bias = true;
  try {
    ModelRunner r(described);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(names::attn_norm_bias(0)), std::string::npos) << e.what();
  }
  Model missing = model;
  missing.erase(names::up_proj(1));
  try {
    ModelRunner r(missing);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput);
    EXPECT_NE(std::string(e.what()).find(names::up_proj(1)), std::string::npos);
  }
  Model misshaped = model;
  misshaped.set(Tensor::from_f32(names::k_proj(0), {6, 8}, std::vector<float>(48, 0.0f)));
  EXPECT_THROW(ModelRunner r(misshaped), Error);
}

TEST(Errors, ReloadLayerRejectsInconsistentShapes) {
  Model model = make_random_llama(tiny_config(), 17);
  ModelRunner runner(model);
  model.set(Tensor::from_f32(names::o_proj(0), {8, 12}, std::vector<float>(96, 0.0f)));  // q has 16 rows
  try {
    runner.reload_layer(model, 0);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput);
    EXPECT_NE(std::string(e.what()).find(names::o_proj(0)), std::string::npos);
  }
}

}  // namespace
}  // namespace slmopt
