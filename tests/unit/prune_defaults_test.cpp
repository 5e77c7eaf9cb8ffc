// prune's defaults (issue 12, defects 2 and 16): the default importance method ("mixed") scores FFN channels by
// activation and heads / KV groups by masked loss within a cost budget, falling back to activation beyond it;
// and a ratio that rounds to no cut is refused with a line saying why instead of writing an unpruned model.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "slmopt/core/error.h"
#include "slmopt/exec/model_runner.h"
#include "slmopt/prune/importance.h"
#include "slmopt/prune/structured.h"
#include "synthetic_llama.h"
#include "test_support.h"

namespace slmopt {
namespace {

using testing::llama_config;
using testing::make_random_llama;
using testing::random_tokens;

// hidden 16, FFN 24, 3 layers, 4 heads in 2 KV groups (2 query heads per group), head_dim 4, vocab 13.
Config gqa_config() { return llama_config(16, 24, 3, 4, 2, 4, 13); }

std::vector<std::vector<int32_t>> windows_of(int64_t count, int64_t length, uint32_t seed) {
  std::vector<std::vector<int32_t>> w;
  for (int64_t i = 0; i < count; ++i) w.push_back(random_tokens(length, 13, seed + static_cast<uint32_t>(i)));
  return w;
}

ImportanceScores flat_scores(const Config& c) {
  ImportanceScores s;
  for (int64_t l = 0; l < c.num_layers; ++l)
    s.layers.push_back({std::vector<double>(static_cast<size_t>(c.heads(l)), 1.0),
                        std::vector<double>(static_cast<size_t>(c.kv_heads(l)), 1.0),
                        std::vector<double>(static_cast<size_t>(c.ffn(l)), 1.0)});
  return s;
}

TEST(PruneDefaults, MixedScoresHeadsByLossAndChannelsByActivation) {
  const Model model = make_random_llama(gqa_config(), 31);
  const ModelRunner runner(model);
  const auto windows = windows_of(3, 8, 90);
  const ImportanceScores loss = compute_importance(runner, windows, {ImportanceMethod::MaskedLoss, 0});
  const ImportanceScores act = compute_importance(runner, windows, {ImportanceMethod::Activation, 0});
  const ImportanceScores mixed = compute_importance(runner, windows, {ImportanceMethod::Mixed, 0});
  EXPECT_EQ(mixed.method, ImportanceMethod::Mixed);
  EXPECT_EQ(mixed.head_method, ImportanceMethod::MaskedLoss);
  EXPECT_TRUE(mixed.head_note.empty());
  EXPECT_NEAR(mixed.base_loss, loss.base_loss, 1e-12);
  for (size_t l = 0; l < 3; ++l) {
    EXPECT_EQ(mixed.layers[l].heads, loss.layers[l].heads) << l;
    EXPECT_EQ(mixed.layers[l].kv_groups, loss.layers[l].kv_groups) << l;
    EXPECT_EQ(mixed.layers[l].ffn, act.layers[l].ffn) << l;
  }
  // The saved scores say which method scored the heads, and read back.
  const nlohmann::json j = importance_to_json(mixed);
  EXPECT_EQ(j.at("method"), "mixed");
  EXPECT_EQ(j.at("heads_method"), "loss");
  const ImportanceScores back = importance_from_json(j, "scores.json");
  EXPECT_EQ(back.method, ImportanceMethod::Mixed);
  EXPECT_EQ(back.head_method, ImportanceMethod::MaskedLoss);
}

TEST(PruneDefaults, MixedFallsBackToActivationForHeadsBeyondTheBudget) {
  const Model model = make_random_llama(gqa_config(), 32);
  const ModelRunner runner(model);
  const auto windows = windows_of(2, 8, 95);
  // Σ_l (4 heads + 2 groups)·(3 − l) / 3 = 6·6/3 = 12 forward passes per window.
  EXPECT_DOUBLE_EQ(head_loss_cost(runner, 2), 24.0);
  ImportanceOptions options{ImportanceMethod::Mixed, 0};
  options.head_loss_budget = 23;
  const ImportanceScores mixed = compute_importance(runner, windows, options);
  const ImportanceScores act = compute_importance(runner, windows, {ImportanceMethod::Activation, 0});
  EXPECT_EQ(mixed.head_method, ImportanceMethod::Activation);
  EXPECT_NE(mixed.head_note.find("masked loss would cost 24 forward passes"), std::string::npos) << mixed.head_note;
  for (size_t l = 0; l < 3; ++l) {
    EXPECT_EQ(mixed.layers[l].heads, act.layers[l].heads);
    EXPECT_EQ(mixed.layers[l].ffn, act.layers[l].ffn);
  }
  options.head_loss_budget = 24;  // the budget is inclusive
  EXPECT_EQ(compute_importance(runner, windows, options).head_method, ImportanceMethod::MaskedLoss);
}

// Defect 2: 4 query heads in 2 KV groups lose heads two at a time (one per group), so ratios up to 0.25 round to
// keeping all 4. That used to exit 0 with "0.0 % removed".
TEST(PruneDefaults, AHeadRatioThatRemovesNothingIsRefused) {
  const Config c = gqa_config();
  const ImportanceScores s = flat_scores(c);
  for (double ratio : {0.1, 0.25}) {
    PruneSpec spec;
    spec.head_ratio = ratio;
    try {
      plan_pruning(c, s, spec);
      ADD_FAILURE() << "ratio " << ratio << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Usage);
      const std::string m = e.what();
      EXPECT_NE(m.find("removes no head"), std::string::npos) << m;
      EXPECT_NE(m.find("use a ratio above 0.25 (e.g. 0.5)"), std::string::npos) << m;
    }
  }
  // Met globally: 10 % of 12 heads rounds to 1, less than one step of 2; 25 % to 3, which removes one step.
  PruneSpec global;
  global.counts = CountPolicy::PerLayer;
  global.head_ratio = 0.1;
  EXPECT_THROW(plan_pruning(c, s, global), Error);
  global.head_ratio = 0.25;
  EXPECT_NO_THROW(plan_pruning(c, s, global));
  PruneSpec ok;
  ok.head_ratio = 0.26;  // nearest valid count: 2 of 4
  EXPECT_EQ(plan_pruning(c, s, ok).layers[0].heads.size(), 2u);
  ok.head_unit = HeadUnit::KvGroups;
  ok.head_ratio = 0.1;  // whole groups: 2 heads at a time as well
  EXPECT_THROW(plan_pruning(c, s, ok), Error);
}

TEST(PruneDefaults, AnFfnRatioThatRemovesNothingIsRefused) {
  const Config c = gqa_config();
  const ImportanceScores s = flat_scores(c);
  PruneSpec spec;
  spec.ffn_ratio = 0.1;  // 24 channels → 21.6 kept → rounded to a multiple of 16: 16 (removes 8)
  spec.ffn_multiple = 16;
  EXPECT_EQ(plan_pruning(c, s, spec).layers[0].ffn.size(), 16u);
  spec.ffn_multiple = 24;  // only 24 is a multiple of 24: nothing removed
  try {
    plan_pruning(c, s, spec);
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("removes no channel"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace slmopt
