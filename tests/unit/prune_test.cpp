// Structured pruning: masks, zeroed weights and physical removal agree (heads, KV groups, FFN channels, layers,
// per-layer counts); the planner honours GQA and the count policies; importance scores mean what importance.h
// says (checked against direct masked forwards); refit lowers the layer output error and the model's loss.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <vector>

#include "slmopt/core/error.h"
#include "slmopt/core/parallel.h"
#include "slmopt/exec/log_softmax.h"
#include "slmopt/exec/model_runner.h"
#include "slmopt/io/hf.h"
#include "slmopt/ir/tensor_names.h"
#include "slmopt/prune/importance.h"
#include "slmopt/prune/refit.h"
#include "slmopt/prune/structured.h"
#include "family_configs.h"
#include "slmopt/ir/random_weights.h"
#include "synthetic_llama.h"
#include "test_support.h"

namespace slmopt {
namespace {

using testing::llama_config;
using testing::make_random_llama;
using testing::random_tokens;

// hidden 16, FFN 24, 3 layers, 4 heads in 2 KV groups, head_dim 4, vocab 13.
Config gqa_config() { return llama_config(16, 24, 3, 4, 2, 4, 13); }

// max |a − b| ≤ tol · max|b| (and the logits are not trivially small).
void expect_close(const RowMatrix& a, const RowMatrix& b, double tol) {
  ASSERT_EQ(a.rows(), b.rows());
  ASSERT_EQ(a.cols(), b.cols());
  const double scale = b.cwiseAbs().maxCoeff();
  ASSERT_GT(scale, 0.1);
  EXPECT_LE((a - b).cwiseAbs().maxCoeff(), tol * scale);
}

ForwardMasks empty_masks(int64_t layers) {
  ForwardMasks m;
  m.heads.assign(static_cast<size_t>(layers), {});
  m.ffn_channels.assign(static_cast<size_t>(layers), {});
  return m;
}

RowMatrix masked_logits(const Model& model, const ForwardMasks& masks, const std::vector<int32_t>& tokens) {
  RunOptions options;
  options.masks = &masks;
  return ModelRunner(model).logits(tokens, options);
}

// Zeroes columns [first, first + count) of a weight in place (F32 models).
void zero_columns(Model& model, const std::string& name, int64_t first, int64_t count) {
  const Tensor& t = model.tensor(name);
  std::vector<float> v = t.to_f32();
  for (int64_t r = 0; r < t.rows(); ++r)
    for (int64_t c = first; c < first + count; ++c) v[static_cast<size_t>(r * t.cols() + c)] = 0;
  model.set(Tensor::from_f32(name, t.shape(), v));
}

double mean_nll(const ModelRunner& runner, const std::vector<std::vector<int32_t>>& windows,
                const ForwardMasks* masks = nullptr) {
  RunOptions options;
  options.masks = masks;
  double sum = 0;
  int64_t n = 0;
  for (const auto& w : windows) {
    for (double v : next_token_nll(runner.logits(w, options), w)) sum += v;
    n += static_cast<int64_t>(w.size()) - 1;
  }
  return sum / static_cast<double>(n);
}

std::vector<std::vector<int32_t>> windows_of(int64_t count, int64_t length, int64_t vocab, uint32_t seed) {
  std::vector<std::vector<int32_t>> w;
  for (int64_t i = 0; i < count; ++i) w.push_back(random_tokens(length, vocab, seed + static_cast<uint32_t>(i)));
  return w;
}

TEST(PruneMasks, HeadMaskEqualsZeroedOutputColumns) {
  const Model model = make_random_llama(gqa_config(), 11);
  const auto tokens = random_tokens(9, 13, 1);
  ForwardMasks masks = empty_masks(3);
  masks.heads[1] = {1, 0, 1, 1};
  Model zeroed = model;
  zero_columns(zeroed, names::o_proj(1), 4, 4);
  expect_close(ModelRunner(zeroed).logits(tokens), masked_logits(model, masks, tokens), 1e-6);
}

TEST(PruneCut, RemovingQueryHeadsWithinGroupsMatchesMasking) {
  const Model model = make_random_llama(gqa_config(), 12);
  const auto tokens = random_tokens(10, 13, 2);
  ForwardMasks masks = empty_masks(3);
  masks.heads[0] = {0, 1, 1, 0};  // keeps head 1 of group 0 and head 2 of group 1
  PrunePlan plan = full_plan(model.config);
  plan.layers[0].heads = {1, 2};
  Model pruned = model;
  apply_prune_plan(pruned, plan);
  EXPECT_EQ(pruned.config.heads(0), 2);
  EXPECT_EQ(pruned.config.kv_heads(0), 2);
  EXPECT_EQ(pruned.config.heads(1), 4);
  EXPECT_EQ(pruned.tensor(names::q_proj(0)).shape(), (std::vector<int64_t>{8, 16}));
  EXPECT_EQ(pruned.tensor(names::o_proj(0)).shape(), (std::vector<int64_t>{16, 8}));
  expect_close(ModelRunner(pruned).logits(tokens), masked_logits(model, masks, tokens), 1e-5);
}

TEST(PruneCut, RemovingAKvGroupDropsItsKeyValueRowsAndMatchesMasking) {
  Config c = gqa_config();
  c.attention_bias = true;  // q/k/v biases must be cut with their rows
  const Model model = make_random_llama(c, 13);
  const auto tokens = random_tokens(10, 13, 3);
  ForwardMasks masks = empty_masks(3);
  masks.heads[2] = {0, 0, 1, 1};
  PrunePlan plan = full_plan(model.config);
  plan.layers[2].heads = {2, 3};
  plan.layers[2].kv_heads = {1};
  Model pruned = model;
  apply_prune_plan(pruned, plan);
  EXPECT_EQ(pruned.config.kv_heads(2), 1);
  EXPECT_EQ(pruned.tensor(names::k_proj(2)).shape(), (std::vector<int64_t>{4, 16}));
  EXPECT_EQ(pruned.tensor(names::v_bias(2)).shape(), (std::vector<int64_t>{4}));
  EXPECT_EQ(pruned.tensor(names::q_bias(2)).shape(), (std::vector<int64_t>{8}));
  expect_close(ModelRunner(pruned).logits(tokens), masked_logits(model, masks, tokens), 1e-5);
}

TEST(PruneCut, RemovingFfnChannelsMatchesMaskingAndZeroedColumns) {
  const Model model = make_random_llama(gqa_config(), 14);
  const auto tokens = random_tokens(8, 13, 4);
  ForwardMasks masks = empty_masks(3);
  masks.ffn_channels[1].assign(24, 1.0f);
  PrunePlan plan = full_plan(model.config);
  plan.layers[1].ffn.clear();
  Model zeroed = model;
  for (int64_t c = 0; c < 24; ++c) {
    if (c % 3 == 0) {
      masks.ffn_channels[1][static_cast<size_t>(c)] = 0;
      zero_columns(zeroed, names::down_proj(1), c, 1);
    } else {
      plan.layers[1].ffn.push_back(c);
    }
  }
  Model pruned = model;
  apply_prune_plan(pruned, plan);
  EXPECT_EQ(pruned.config.ffn(1), 16);
  EXPECT_EQ(pruned.tensor(names::down_proj(1)).shape(), (std::vector<int64_t>{16, 16}));
  const RowMatrix masked = masked_logits(model, masks, tokens);
  expect_close(ModelRunner(zeroed).logits(tokens), masked, 1e-6);
  expect_close(ModelRunner(pruned).logits(tokens), masked, 1e-5);
}

TEST(PruneCut, PerLayerCountsGiveARunnableModelWithPerLayerConfig) {
  const Model model = make_random_llama(gqa_config(), 15, DType::BF16);
  const auto tokens = random_tokens(7, 13, 5);
  PrunePlan plan = full_plan(model.config);
  plan.layers[0].heads = {0, 1};  // one group of 2
  plan.layers[0].kv_heads = {0};
  plan.layers[1].heads = {0, 3};  // one head per group
  plan.layers[2].ffn = {1, 5, 7, 20};
  ForwardMasks masks = empty_masks(3);
  masks.heads[0] = {1, 1, 0, 0};
  masks.heads[1] = {1, 0, 0, 1};
  masks.ffn_channels[2].assign(24, 0.0f);
  for (int64_t c : plan.layers[2].ffn) masks.ffn_channels[2][static_cast<size_t>(c)] = 1;
  Model pruned = model;
  apply_prune_plan(pruned, plan);
  EXPECT_FALSE(pruned.config.uniform_layers());
  EXPECT_EQ(pruned.config.layer_num_heads, (std::vector<int64_t>{2, 2, 4}));
  EXPECT_EQ(pruned.config.layer_num_kv_heads, (std::vector<int64_t>{1, 2, 2}));
  EXPECT_EQ(pruned.config.layer_intermediate_size, (std::vector<int64_t>{24, 24, 4}));
  EXPECT_EQ(pruned.tensor(names::q_proj(0)).dtype(), DType::BF16);
  expect_close(ModelRunner(pruned).logits(tokens), masked_logits(model, masks, tokens), 1e-5);
}

TEST(PruneCut, DroppingLayersRenumbersAndMatchesSkippingBlocks) {
  const Model model = make_random_llama(gqa_config(), 16);
  const auto tokens = random_tokens(6, 13, 6);
  PrunePlan plan = full_plan(model.config);
  plan.layers.erase(plan.layers.begin() + 1);
  Model pruned = model;
  apply_prune_plan(pruned, plan);
  EXPECT_EQ(pruned.config.num_layers, 2);
  EXPECT_FALSE(pruned.has(names::q_proj(2)));
  const ModelRunner full(model);
  RowMatrix h = full.embed(tokens);
  full.run_block(0, h);
  full.run_block(2, h);
  expect_close(ModelRunner(pruned).logits(tokens), full.final_logits(h), 1e-6);
}

TEST(PruneCut, UniformPrunedModelRoundTripsThroughHfAndPerLayerCountsAreRefused) {
  const Model model = make_random_llama(gqa_config(), 18, DType::BF16);
  const auto tokens = random_tokens(8, 13, 7);
  PrunePlan plan = full_plan(model.config);
  for (auto& k : plan.layers) {
    k.heads = {0, 3};
    k.ffn = {0, 2, 4, 6, 8, 10, 12, 14};
  }
  Model pruned = model;
  apply_prune_plan(pruned, plan);
  EXPECT_TRUE(pruned.config.uniform_layers());
  EXPECT_EQ(pruned.config.num_heads, 2);
  EXPECT_EQ(pruned.config.num_kv_heads, 2);
  EXPECT_EQ(pruned.config.intermediate_size, 8);
  const std::string dir = testing::scratch_dir("pruned_hf");
  write_hf_model(pruned, dir);
  const Model back = load_hf_model(dir);
  EXPECT_EQ(back.config.num_heads, 2);
  EXPECT_EQ(back.config.intermediate_size, 8);
  const RowMatrix want = ModelRunner(pruned).logits(tokens);
  EXPECT_EQ((ModelRunner(back).logits(tokens) - want).cwiseAbs().maxCoeff(), 0.0f);

  plan.layers[1].ffn = {1, 2};  // per-layer FFN sizes: HF configs cannot hold them (GGUF can)
  Model uneven = model;
  apply_prune_plan(uneven, plan);
  EXPECT_EQ(uneven.config.layer_intermediate_size, (std::vector<int64_t>{8, 2, 8}));
  EXPECT_THROW(write_hf_model(uneven, testing::scratch_dir("pruned_hf_uneven")), Error);
}

TEST(PruneCut, RejectsGqaInconsistentPlans) {
  Model model = make_random_llama(gqa_config(), 17);
  PrunePlan unequal = full_plan(model.config);
  unequal.layers[0].heads = {0, 1, 2};  // 2 heads of group 0, 1 of group 1
  EXPECT_THROW(apply_prune_plan(model, unequal), Error);
  PrunePlan orphan = full_plan(model.config);
  orphan.layers[0].heads = {0, 2};
  orphan.layers[0].kv_heads = {0};  // head 2 needs KV head 1
  EXPECT_THROW(apply_prune_plan(model, orphan), Error);
  EXPECT_EQ(model.config.heads(0), 4);  // a refused plan leaves the model alone
}

ImportanceScores hand_scores(const Config& c) {
  ImportanceScores s;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    LayerImportance li;
    for (int64_t h = 0; h < c.heads(l); ++h) li.heads.push_back(static_cast<double>((h * 7 + l * 3) % 5));
    for (int64_t g = 0; g < c.kv_heads(l); ++g) li.kv_groups.push_back(static_cast<double>(g == l % 2));
    for (int64_t f = 0; f < c.ffn(l); ++f) li.ffn.push_back(static_cast<double>((f * 5 + l) % 24));
    s.layers.push_back(li);
  }
  return s;
}

TEST(PrunePlanner, KeepsTheBestQueryHeadOfEachGroupAndTheBestChannels) {
  const Config c = gqa_config();
  ImportanceScores s = hand_scores(c);
  s.layers[0].heads = {0.1, 0.9, 0.5, 0.4};
  PruneSpec spec;
  spec.heads_per_layer = 2;
  spec.ffn_ratio = 0.5;
  const PrunePlan plan = plan_pruning(c, s, spec);
  ASSERT_EQ(plan.layers.size(), 3u);
  EXPECT_EQ(plan.layers[0].heads, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(plan.layers[0].kv_heads, (std::vector<int64_t>{0, 1}));
  for (const auto& k : plan.layers) {
    ASSERT_EQ(k.ffn.size(), 12u);
    const auto& f = s.layers[static_cast<size_t>(k.source_layer)].ffn;
    double kept_min = 1e9, dropped_max = -1e9;
    for (int64_t ch = 0; ch < 24; ++ch) {
      const double v = f[static_cast<size_t>(ch)];
      if (std::binary_search(k.ffn.begin(), k.ffn.end(), ch))
        kept_min = std::min(kept_min, v);
      else
        dropped_max = std::max(dropped_max, v);
    }
    EXPECT_GE(kept_min, dropped_max);
  }
}

TEST(PrunePlanner, KvGroupModeRemovesWholeGroupsAndRoundsRatios) {
  const Config c = gqa_config();
  const ImportanceScores s = hand_scores(c);
  PruneSpec spec;
  spec.head_unit = HeadUnit::KvGroups;
  spec.head_ratio = 0.4;  // 4·0.6 = 2.4 heads → nearest valid count 2 (one group of 2)
  const PrunePlan plan = plan_pruning(c, s, spec);
  for (const auto& k : plan.layers) {
    ASSERT_EQ(k.kv_heads.size(), 1u);
    const int64_t g = k.source_layer % 2;  // the group hand_scores favours
    EXPECT_EQ(k.kv_heads[0], g);
    EXPECT_EQ(k.heads, (std::vector<int64_t>{2 * g, 2 * g + 1}));
  }
  PruneSpec bad;
  bad.heads_per_layer = 3;
  EXPECT_THROW(plan_pruning(c, s, bad), Error);
  PruneSpec both;
  both.head_ratio = 0.5;
  both.heads_per_layer = 2;
  EXPECT_THROW(plan_pruning(c, s, both), Error);
}

TEST(PrunePlanner, PerLayerPolicyRemovesFromTheWeakestLayersFirst) {
  const Config c = gqa_config();
  ImportanceScores s = hand_scores(c);
  // After per-layer normalisation, layer 1's weak heads are the cheapest anywhere.
  s.layers[0].heads = {1, 1, 1, 1};
  s.layers[1].heads = {0.01, 1, 0.01, 1};
  s.layers[2].heads = {1, 1, 1, 1};
  PruneSpec spec;
  spec.counts = CountPolicy::PerLayer;
  spec.head_ratio = 2.0 / 12.0;  // remove 2 heads = one step of 2 (one head per group)
  spec.ffn_ratio = 0.25;
  spec.ffn_multiple = 2;
  const PrunePlan plan = plan_pruning(c, s, spec);
  EXPECT_EQ(plan.layers[0].heads.size(), 4u);
  EXPECT_EQ(plan.layers[1].heads, (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(plan.layers[2].heads.size(), 4u);
  int64_t kept = 0;
  for (const auto& k : plan.layers) {
    EXPECT_EQ(k.ffn.size() % 2, 0u);
    kept += static_cast<int64_t>(k.ffn.size());
  }
  EXPECT_NEAR(static_cast<double>(kept), 72 * 0.75, 3.0);
}

TEST(PrunePlanner, DropsAndKeepsLayers) {
  const Config c = gqa_config();
  const ImportanceScores s = hand_scores(c);
  PruneSpec spec;
  spec.drop_layers = {1};
  const PrunePlan plan = plan_pruning(c, s, spec);
  ASSERT_EQ(plan.layers.size(), 2u);
  EXPECT_EQ(plan.layers[0].source_layer, 0);
  EXPECT_EQ(plan.layers[1].source_layer, 2);
  spec.drop_layers = {0, 1, 2};
  EXPECT_THROW(plan_pruning(c, s, spec), Error);
}

TEST(PruneImportance, MaskedLossScoresEqualDirectMaskedForwards) {
  const Model model = make_random_llama(gqa_config(), 21);
  const ModelRunner runner(model);
  const auto windows = windows_of(3, 8, 13, 40);
  const ImportanceScores s = compute_importance(runner, windows, {ImportanceMethod::MaskedLoss, 0});
  const double base = mean_nll(runner, windows);
  EXPECT_NEAR(s.base_loss, base, 1e-9);
  EXPECT_EQ(s.tokens, 21);
  ForwardMasks head = empty_masks(3);
  head.heads[1] = {1, 1, 0, 1};
  EXPECT_NEAR(s.layers[1].heads[2], mean_nll(runner, windows, &head) - base, 1e-6);
  ForwardMasks group = empty_masks(3);
  group.heads[0] = {0, 0, 1, 1};
  EXPECT_NEAR(s.layers[0].kv_groups[0], mean_nll(runner, windows, &group) - base, 1e-6);
  for (int64_t l : {0, 2}) {
    ForwardMasks ffn = empty_masks(3);
    ffn.ffn_channels[static_cast<size_t>(l)].assign(24, 1.0f);
    ffn.ffn_channels[static_cast<size_t>(l)][5] = 0;
    EXPECT_NEAR(s.layers[static_cast<size_t>(l)].ffn[5], mean_nll(runner, windows, &ffn) - base, 1e-5) << l;
  }
  // Not all zero: the scores carry information.
  EXPECT_GT(std::abs(s.layers[1].heads[2]), 1e-4);
}

TEST(PruneImportance, ActivationScoresAreContributionNorms) {
  const Model model = make_random_llama(gqa_config(), 22);
  const ModelRunner runner(model);
  const auto windows = windows_of(2, 6, 13, 50);
  const ImportanceScores s = compute_importance(runner, windows, {ImportanceMethod::Activation, 0});
  // Direct: the head's contribution equals the change of o_proj's output when only that head is kept.
  const LayerWeights& w = runner.weights().layers[1];
  class Grab : public LinearObserver {
   public:
    explicit Grab(std::string n) : name(std::move(n)) {}
    void on_linear(const LinearActivation& a) override {
      if (a.weight == name) inputs.push_back(a.input);
    }
    std::string name;
    std::vector<RowMatrix> inputs;
  } grab(w.o.name()), grab_down(w.down.name());
  double head3 = 0, channel7 = 0;
  int64_t tokens = 0;
  for (const auto& win : windows) {
    RunOptions o;
    o.observer = &grab;
    runner.logits(win, o);
    o.observer = &grab_down;
    runner.logits(win, o);
    tokens += static_cast<int64_t>(win.size());
  }
  for (size_t i = 0; i < grab.inputs.size(); ++i) {
    const RowMatrix contrib = grab.inputs[i].middleCols(12, 4) * decode_matrix(w.o.weight).middleCols(12, 4).transpose();
    for (int64_t t = 0; t < contrib.rows(); ++t) head3 += contrib.row(t).norm();
    const RowMatrix c7 = grab_down.inputs[i].col(7) * decode_matrix(w.down.weight).col(7).transpose();
    for (int64_t t = 0; t < c7.rows(); ++t) channel7 += c7.row(t).norm();
  }
  EXPECT_NEAR(s.layers[1].heads[3], head3 / static_cast<double>(tokens), 1e-5);
  EXPECT_NEAR(s.layers[1].ffn[7], channel7 / static_cast<double>(tokens), 1e-5);
  EXPECT_GT(s.layers[1].kv_groups[1], 0.0);
}

TEST(PruneImportance, RandomScoresRepeatPerSeedAndJsonRoundTrips) {
  const Model model = make_random_llama(gqa_config(), 23);
  const ModelRunner runner(model);
  const auto a = compute_importance(runner, {}, {ImportanceMethod::Random, 7});
  const auto b = compute_importance(runner, {}, {ImportanceMethod::Random, 7});
  const auto c = compute_importance(runner, {}, {ImportanceMethod::Random, 8});
  EXPECT_EQ(a.layers[2].ffn, b.layers[2].ffn);
  EXPECT_NE(a.layers[2].ffn, c.layers[2].ffn);
  const auto back = importance_from_json(importance_to_json(a), "scores.json");
  EXPECT_EQ(back.method, ImportanceMethod::Random);
  EXPECT_EQ(back.layers[1].heads, a.layers[1].heads);
  EXPECT_THROW(importance_from_json(nlohmann::json::object(), "scores.json"), Error);
  EXPECT_THROW(compute_importance(runner, {}, {ImportanceMethod::MaskedLoss, 0}), Error);
}

TEST(PruneImportance, ScoresDoNotDependOnTheThreadCount) {
  const Model model = make_random_llama(gqa_config(), 24);
  const ModelRunner runner(model);
  const auto windows = windows_of(3, 7, 13, 60);
  set_thread_count(1);
  const auto one = compute_importance(runner, windows, {ImportanceMethod::MaskedLoss, 0});
  set_thread_count(3);
  const auto three = compute_importance(runner, windows, {ImportanceMethod::MaskedLoss, 0});
  set_thread_count(0);
  EXPECT_EQ(importance_to_json(one).dump(), importance_to_json(three).dump());
}

TEST(PruneRefit, LowersTheLayerOutputErrorAndTheLoss) {
  const Model model = make_random_llama(gqa_config(), 25);
  const ModelRunner original(model);
  const auto calib = windows_of(6, 12, 13, 70);
  const auto scores = compute_importance(original, calib, {ImportanceMethod::Activation, 0});
  PruneSpec spec;
  spec.heads_per_layer = 2;
  spec.ffn_ratio = 0.5;
  const PrunePlan plan = plan_pruning(model.config, scores, spec);
  Model pruned = model;
  apply_prune_plan(pruned, plan);
  const double before = mean_nll(ModelRunner(pruned), calib);
  const RefitReport report = refit_pruned_model(original, pruned, plan, calib);
  ASSERT_EQ(report.sublayers.size(), 6u);  // o_proj and down_proj of 3 layers
  for (const auto& s : report.sublayers) {
    EXPECT_LT(s.error_after, s.error_before) << s.weight;
    EXPECT_GE(s.error_after, 0.0);
  }
  const ModelRunner refit(pruned);
  const double base = mean_nll(original, calib);
  EXPECT_LT(std::abs(mean_nll(refit, calib) - base), std::abs(before - base));
  // The fitted model is a pruned model still: same shapes.
  EXPECT_EQ(pruned.tensor(names::down_proj(0)).shape(), (std::vector<int64_t>{16, 12}));
}

// ---- every family's description (tests/families): the cut, the refit --------------------------------------

// Attention heads: whole KV groups where a layer has two or more, else query heads inside the one group (the
// spec the family consumer test runs through `slmopt prune`); a quarter of the FFN channels.
PruneSpec family_spec(const Config& c) {
  PruneSpec spec;
  spec.head_unit = c.num_kv_heads >= 2 ? HeadUnit::KvGroups : HeadUnit::QueryHeads;
  spec.head_ratio = 0.5;
  spec.ffn_ratio = 0.25;
  return spec;
}

// Mean squared logit difference over the windows.
double logit_mse(const ModelRunner& a, const ModelRunner& b, const std::vector<std::vector<int32_t>>& windows) {
  double sum = 0;
  int64_t n = 0;
  for (const auto& w : windows) {
    const RowMatrix d = a.logits(w) - b.logits(w);
    sum += d.cast<double>().squaredNorm();
    n += d.size();
  }
  return sum / static_cast<double>(n);
}

class PruneFamilies : public ::testing::TestWithParam<std::string> {};

// The cut model computes what the unpruned one does with the removed heads and channels masked — except where
// a norm spans the whole q/k projection (OLMo-2): its RMS then runs over the kept rows only, so the cut slices
// the norm's gains with the rows and the model differs from masking by that renormalisation.
TEST_P(PruneFamilies, CutMatchesMaskingAndSlicesWholeProjectionNorms) {
  const Model model = random_model(testing::family_config(GetParam()), DType::F32, 31);
  const Config& c = model.config;
  const auto calib = windows_of(3, 16, 512, 40);
  const PrunePlan plan = plan_pruning(c, compute_importance(ModelRunner(model), calib, {ImportanceMethod::Activation, 0}),
                                      family_spec(c));
  ForwardMasks masks = empty_masks(c.num_layers);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const LayerKeep& k = plan.layers[static_cast<size_t>(l)];
    masks.heads[static_cast<size_t>(l)].assign(static_cast<size_t>(c.heads(l)), 0.0f);
    for (int64_t h : k.heads) masks.heads[static_cast<size_t>(l)][static_cast<size_t>(h)] = 1.0f;
    masks.ffn_channels[static_cast<size_t>(l)].assign(static_cast<size_t>(c.ffn(l)), 0.0f);
    for (int64_t j : k.ffn) masks.ffn_channels[static_cast<size_t>(l)][static_cast<size_t>(j)] = 1.0f;
  }
  Model pruned = model;
  apply_prune_plan(pruned, plan);
  EXPECT_LT(pruned.config.num_heads, c.num_heads);
  EXPECT_LT(pruned.config.intermediate_size, c.intermediate_size);
  const auto tokens = random_tokens(20, 512, 41);
  if (c.qk_norm == QkNormKind::Whole) {
    for (int64_t l = 0; l < pruned.config.num_layers; ++l) {
      EXPECT_EQ(pruned.tensor(names::q_norm(l)).shape(),
                (std::vector<int64_t>{pruned.config.heads(l) * c.head_dim}));
      EXPECT_EQ(pruned.tensor(names::k_norm(l)).shape(),
                (std::vector<int64_t>{pruned.config.kv_heads(l) * c.head_dim}));
    }
    EXPECT_TRUE(ModelRunner(pruned).logits(tokens).allFinite());
  } else {
    expect_close(ModelRunner(pruned).logits(tokens), masked_logits(model, masks, tokens), 2e-5);
  }
}

// The refit lowers every fitted sublayer's error on the calibration activations and the logit error against the
// unpruned model on the calibration windows — also behind post norms (Gemma, OLMo-2), with a parallel residual
// (Phi-2) and a residual multiplier (Granite). On held-out windows of these random-weight models it is printed,
// not asserted: measured lower for 10 of the 13 configs, up to 14 % higher for OLMo-2, Phi-3-mini and Phi-3.5
// (1152 calibration rows; the fits have up to 384 inputs).
TEST_P(PruneFamilies, RefitLowersTheSublayerErrorsAndTheLogitError) {
  const Model model = random_model(testing::family_config(GetParam()), DType::F32, 32);
  const ModelRunner original(model);
  const auto calib = windows_of(24, 48, 512, 50);
  const auto held_out = windows_of(3, 48, 512, 90);
  const PrunePlan plan =
      plan_pruning(model.config, compute_importance(original, calib, {ImportanceMethod::Activation, 0}),
                   family_spec(model.config));
  Model pruned = model;
  apply_prune_plan(pruned, plan);
  const double before = logit_mse(original, ModelRunner(pruned), calib);
  const double held_before = logit_mse(original, ModelRunner(pruned), held_out);
  const RefitReport report = refit_pruned_model(original, pruned, plan, calib);
  EXPECT_EQ(report.sublayers.size(), static_cast<size_t>(2 * model.config.num_layers));
  for (const auto& s : report.sublayers) EXPECT_LT(s.error_after, s.error_before) << s.weight;
  const double after = logit_mse(original, ModelRunner(pruned), calib);
  const double held_after = logit_mse(original, ModelRunner(pruned), held_out);
  std::cout << "[ refit ] " << GetParam() << ": logit MSE on the calibration windows " << before << " → " << after
            << ", held out " << held_before << " → " << held_after << "\n";
  EXPECT_LT(after, before);
}

INSTANTIATE_TEST_SUITE_P(Families, PruneFamilies, ::testing::ValuesIn(testing::family_folders()),
                         [](const auto& param_info) { return testing::family_test_name(param_info.param); });

}  // namespace
}  // namespace slmopt
