// Rotations folded into the weights (quant/rotation.h): the transform is orthogonal for power-of-two and mixed
// widths; every family it accepts computes the same logits after rotation (to float rounding: ≤ 1e-5 of the
// logit range), with every norm weightless; the families it cannot fold are refused with one line naming why;
// tied heads are untied (exact) or kept (the final gain replaced by its mean).
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "slmopt/core/error.h"
#include "slmopt/exec/model_runner.h"
#include "slmopt/io/hf.h"
#include "slmopt/ir/random_weights.h"
#include "slmopt/ir/tensor_names.h"
#include "slmopt/quant/rotation.h"
#include "family_configs.h"
#include "test_support.h"

namespace slmopt {
namespace {

const std::vector<int32_t> kTokens = {1, 50, 7, 300, 12, 99, 5, 42, 17, 3, 250, 8, 77, 401, 2, 19, 64, 128};

double logit_range(const RowMatrix& a) { return a.maxCoeff() - a.minCoeff(); }

TEST(RandomizedHadamard, IsOrthogonalForPowerOfTwoAndMixedWidths) {
  for (int64_t n : {1, 3, 64, 96, 256, 576}) {
    const RandomizedHadamard m(n, 7);
    EXPECT_EQ(m.power_of_two() * m.odd_factor(), n);
    EXPECT_EQ(m.odd_factor() % 2, 1);
    // Rows of the identity through the transform are the rows of M: M·Mᵀ = I.
    std::vector<std::vector<double>> rows(static_cast<size_t>(n), std::vector<double>(static_cast<size_t>(n), 0.0));
    for (int64_t i = 0; i < n; ++i) {
      rows[static_cast<size_t>(i)][static_cast<size_t>(i)] = 1;
      m.apply(rows[static_cast<size_t>(i)].data());
    }
    double worst = 0, spread = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double dot = 0;
        for (int64_t k = 0; k < n; ++k) dot += rows[static_cast<size_t>(i)][static_cast<size_t>(k)] * rows[static_cast<size_t>(j)][static_cast<size_t>(k)];
        worst = std::max(worst, std::abs(dot - (i == j ? 1.0 : 0.0)));
        spread = std::max(spread, std::abs(rows[static_cast<size_t>(i)][static_cast<size_t>(j)]));
      }
    EXPECT_LT(worst, 1e-12) << n;
    // A Hadamard spreads each channel over all of them: no entry near 1 once the width has a power-of-two factor.
    if (m.power_of_two() >= 64) {
      EXPECT_LT(spread, 0.5) << n;
    }
  }
  // Same seed, same matrix; another seed, another one.
  std::vector<double> a(96, 0.0), b(96, 0.0), c(96, 0.0);
  a[5] = b[5] = c[5] = 1;
  RandomizedHadamard(96, 1).apply(a.data());
  RandomizedHadamard(96, 1).apply(b.data());
  RandomizedHadamard(96, 2).apply(c.data());
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

class RotateFamily : public ::testing::TestWithParam<std::string> {};

// Every family config: rotation keeps the logits (to rounding) where the fold is valid, and is refused in one line
// where it is not (LayerNorm: GPT-2, Phi-2; post-norms: Gemma-2/3, OLMo-2).
TEST_P(RotateFamily, KeepsTheLogitsOrRefusesInOneLine) {
  Config config = testing::family_config(GetParam());
  config.vocab_size = std::min<int64_t>(config.vocab_size, 512);
  config.max_position = std::min<int64_t>(config.max_position, 256);
  Model model = random_model(config, DType::F32, 11);
  const bool refused = config.norm_kind == NormKind::LayerNorm || config.norm_placement != NormPlacement::Pre;
  EXPECT_EQ(!rotation_refusal(config).empty(), refused);
  if (refused) {
    try {
      rotate_model(model, {});
      FAIL() << "rotation of " << GetParam() << " was not refused";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Usage);
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
      EXPECT_NE(std::string(e.what()).find("cannot be rotated"), std::string::npos) << e.what();
    }
    return;
  }
  const RowMatrix before = ModelRunner(model).logits(kTokens);
  const RotationReport report = rotate_model(model, {});
  model.validate();
  const RowMatrix after = ModelRunner(model).logits(kTokens);
  EXPECT_LE((before - after).cwiseAbs().maxCoeff(), 1e-5 * logit_range(before)) << GetParam();
  // An ordinary checkpoint: every norm's gain is 1 (q/k norms, which act on heads, are left alone).
  for (const auto& [name, t] : model.tensors()) {
    const bool residual_norm = name.find("layernorm") != std::string::npos || name == names::kFinalNorm;
    if (!residual_norm) continue;
    for (float x : t.to_f32()) ASSERT_EQ(config.norm_unit_offset ? x + 1.0f : x, 1.0f) << name;
  }
  EXPECT_NE(model.tensor(names::q_proj(0)).to_f32(), random_model(config, DType::F32, 11).tensor(names::q_proj(0)).to_f32());
  EXPECT_EQ(report.untied, config.tie_word_embeddings);  // random gains are never uniform: Auto unties
}

INSTANTIATE_TEST_SUITE_P(Families, RotateFamily, ::testing::ValuesIn(testing::family_folders()),
                         [](const auto& param_info) { return testing::family_test_name(param_info.param); });

// The bundled models: llama-5m-kjv (BF16, untied) and tinystories-656k (tied): untied → the same logits; kept
// tied → one matrix, the final gain uniform, logits close but no longer equal.
TEST(RotateBundled, UntiedIsExactAndKeptTieIsOneMatrix) {
  for (const char* name : {"llama-5m-kjv", "tinystories-656k"}) {
    const Model original = load_hf_model(testing::model_path(name));
    const RowMatrix before = ModelRunner(original).logits(kTokens);
    Model untied = original;
    const RotationReport r = rotate_model(untied, {});
    EXPECT_LE((before - ModelRunner(untied).logits(kTokens)).cwiseAbs().maxCoeff(), 1e-5 * logit_range(before)) << name;
    EXPECT_TRUE(untied.has(names::kLmHead));
    EXPECT_EQ(r.was_tied, original.config.tie_word_embeddings);
    if (!original.config.tie_word_embeddings) continue;
    EXPECT_TRUE(r.untied);
    Model kept = original;
    RotationOptions keep;
    keep.tied = TiedHeadRotation::Keep;
    const RotationReport k = rotate_model(kept, keep);
    EXPECT_FALSE(k.untied);
    EXPECT_FALSE(k.tie_exact);
    EXPECT_FALSE(kept.has(names::kLmHead));
    EXPECT_TRUE(kept.config.tie_word_embeddings);
    const std::vector<float> g = kept.tensor(names::kFinalNorm).to_f32();
    EXPECT_EQ(std::set<float>(g.begin(), g.end()).size(), 1u);
    EXPECT_EQ(kept.parameter_count(), original.parameter_count());
    EXPECT_EQ(untied.parameter_count(), original.parameter_count() + original.config.vocab_size * original.config.hidden_size);
  }
}

TEST(RotateBundled, ModeNamesAreChecked) {
  EXPECT_EQ(tied_head_rotation_from_name("keep"), TiedHeadRotation::Keep);
  EXPECT_THROW(tied_head_rotation_from_name("tie"), Error);
}

}  // namespace
}  // namespace slmopt
