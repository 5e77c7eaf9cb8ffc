// AWQ: folding scales leaves the float model's function unchanged (bundled models, GQA included); the scale and
// clip searches never do worse than round-to-nearest on the calibration inputs; calibrated quantization
// (GPTQ, AWQ) is deterministic across thread counts and beats RTN on held-out text.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "slmopt/core/error.h"
#include "slmopt/core/parallel.h"
#include "slmopt/eval/perplexity.h"
#include "slmopt/exec/model_runner.h"
#include "slmopt/io/hf.h"
#include "slmopt/io/hf_gptq.h"
#include "slmopt/ir/random_weights.h"
#include "slmopt/ir/tensor_names.h"
#include "slmopt/quant/awq.h"
#include "slmopt/quant/calibration.h"
#include "slmopt/text/dataset.h"
#include "slmopt/text/tokenizer.h"
#include "family_configs.h"
#include "test_support.h"

namespace slmopt {
namespace {

Eigen::VectorXd random_scales(int64_t n, std::mt19937& rng) {
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  Eigen::VectorXd s(n);
  for (int64_t i = 0; i < n; ++i) s[i] = std::exp2(u(rng));  // 0.5 … 2
  return s;
}

class AwqFold : public ::testing::TestWithParam<const char*> {};

TEST_P(AwqFold, LeavesTheFloatModelsLogitsUnchanged) {
  Model model = load_hf_model(testing::model_path(GetParam()));
  const ModelRunner before(model);
  std::mt19937 rng(9);
  const Config& c = model.config;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    AwqLayerScales s{random_scales(c.hidden_size, rng), random_scales(c.kv_heads(l) * c.head_dim, rng),
                     random_scales(c.hidden_size, rng), random_scales(c.ffn(l), rng)};
    fold_awq_scales(model, l, s);
  }
  EXPECT_NE(model.tensor(names::v_proj(0)).to_f32(), load_hf_model(testing::model_path(GetParam())).tensor(names::v_proj(0)).to_f32());
  const ModelRunner after(model);
  const std::vector<int32_t> tokens = {1, 50, 7, 300, 12, 99, 5, 42, 17, 3, 250, 8};
  const RowMatrix a = before.logits(tokens), b = after.logits(tokens);
  // Scaling in float changes each product's rounding only: relative change stays at float epsilon scale.
  const double max_abs = a.cwiseAbs().maxCoeff();
  EXPECT_LT((a - b).cwiseAbs().maxCoeff(), 2e-5 * max_abs + 1e-5) << "max |logit| " << max_abs;
}

INSTANTIATE_TEST_SUITE_P(Bundled, AwqFold, ::testing::Values("llama-5m-kjv", "tinystories-656k"));

// Every family's description (tests/families): scales folded wherever awq.h says a producer exists — (1 + w)
// norms (Gemma), LayerNorm with bias and one norm feeding both branches (Phi-2), post-norm blocks with no norm
// before q/k/v or the MLP (OLMo-2), gate-less GELU MLPs — leave the float model's function unchanged.
class AwqFamilyFold : public ::testing::TestWithParam<std::string> {};

TEST_P(AwqFamilyFold, LeavesTheFloatModelsLogitsUnchanged) {
  Model model = random_model(testing::family_config(GetParam()), DType::F32, 5);
  const ModelRunner before(model);
  std::mt19937 rng(9);
  const Config& c = model.config;
  const bool parallel = c.residual_layout == ResidualLayout::Parallel;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    AwqLayerScales s;
    if (model.has(names::attn_norm(l))) s.qkv = random_scales(c.hidden_size, rng);
    s.v_out = random_scales(c.kv_heads(l) * c.head_dim, rng);
    if (!parallel && model.has(names::ffn_norm(l))) s.gate_up = random_scales(c.hidden_size, rng);
    if (c.has_gate()) s.down = random_scales(c.ffn(l), rng);
    fold_awq_scales(model, l, s);
  }
  const ModelRunner after(model);
  const std::vector<int32_t> tokens = {1, 50, 7, 300, 12, 99, 5, 42, 17, 3, 250, 8, 77, 401, 2, 19, 64, 128};
  const RowMatrix a = before.logits(tokens), b = after.logits(tokens);
  const double max_abs = a.cwiseAbs().maxCoeff();
  EXPECT_LT((a - b).cwiseAbs().maxCoeff(), 2e-5 * max_abs + 1e-5) << "max |logit| " << max_abs;
}

TEST_P(AwqFamilyFold, ScalesWithNoProducerAreRefused) {
  Model model = random_model(testing::family_config(GetParam()), DType::F32, 5);
  const Config& c = model.config;
  std::mt19937 rng(9);
  if (c.residual_layout == ResidualLayout::Parallel) {
    AwqLayerScales s;
    s.gate_up = random_scales(c.hidden_size, rng);
    EXPECT_THROW(fold_awq_scales(model, 0, s), Error);
  }
  if (!c.has_gate()) {
    AwqLayerScales s;
    s.down = random_scales(c.ffn(0), rng);
    EXPECT_THROW(fold_awq_scales(model, 0, s), Error);
  }
}

INSTANTIATE_TEST_SUITE_P(Families, AwqFamilyFold, ::testing::ValuesIn(testing::family_folders()),
                         [](const auto& param_info) { return testing::family_test_name(param_info.param); });

// AWQ and GPTQ onto Q4_K_M's GGUF grids run block by block on every family; AWQ reports the linears it could
// only round, with the reason, exactly where the description has no producer for the scale.
TEST(AwqCalibration, RunsOnEveryFamilyAndNamesTheLinearsItCannotScale) {
  for (const std::string& folder : testing::family_folders()) {
    SCOPED_TRACE(folder);
    const Model source = random_model(testing::family_config(folder), DType::F32, 5);
    const Config& c = source.config;
    std::vector<std::vector<int32_t>> windows;
    for (int w = 0; w < 4; ++w) {
      std::vector<int32_t> ids;
      for (int i = 0; i < 24; ++i) ids.push_back((w * 131 + i * 37 + 1) % 512);
      windows.push_back(ids);
    }
    TypeSelectionOptions selection;
    selection.preset = QuantPreset::Q4_K_M;
    for (CalibrationMethod method : {CalibrationMethod::Awq, CalibrationMethod::Gptq}) {
      Model model = source;
      CalibrationOptions options;
      options.method = method;
      options.progress = false;
      const CalibrationResult r = quantize_calibrated(model, windows, gguf_preset_targets(model, selection), options);
      EXPECT_FALSE(r.report.linears.empty());
      const ModelRunner runner(model);  // the calibrated model runs
      const RowMatrix logits = runner.logits(windows[0]);
      EXPECT_TRUE(logits.allFinite());
      std::set<std::string> unscaled;
      for (const LinearReport& l : r.report.linears)
        if (!l.awq_note.empty()) unscaled.insert(l.name);
      std::set<std::string> expected;
      if (method == CalibrationMethod::Awq)
        for (int64_t l = 0; l < c.num_layers; ++l) {
          if (c.norm_placement == NormPlacement::Post) {
            for (const auto& n : {names::q_proj(l), names::k_proj(l), names::v_proj(l), names::up_proj(l)})
              expected.insert(n);
            if (c.has_gate()) expected.insert(names::gate_proj(l));
          }
          if (!c.has_gate()) expected.insert(names::down_proj(l));
        }
      // Only linears the preset quantizes are reported.
      std::set<std::string> reported;
      for (const LinearReport& l : r.report.linears) reported.insert(l.name);
      std::set<std::string> expected_reported;
      for (const auto& n : expected)
        if (reported.count(n)) expected_reported.insert(n);
      EXPECT_EQ(unscaled, expected_reported) << calibration_method_name(method);
    }
  }
}

struct Calibration {
  Model model;
  std::vector<std::vector<int32_t>> windows;
  std::vector<EvalWindow> eval;
};

Calibration kjv(int64_t n_windows) {
  Calibration c{load_hf_model(testing::model_path("llama-5m-kjv")), {}, {}};
  const Tokenizer tok(c.model.vocab);
  c.windows = sample_calibration_windows(tokenize_file(tok, testing::data_path("kjv-calib.txt")), n_windows, 128, 1,
                                         c.model.vocab.bos_id);
  c.eval = make_eval_windows(tokenize_file(tok, testing::data_path("kjv-eval.txt")), 128, c.model.vocab.bos_id, 24);
  return c;
}

TEST(AwqCalibration, SearchesNeverLoseToRoundToNearestAndBeatItOnHeldOutText) {
  Calibration c = kjv(16);
  const Model original = c.model;
  CalibrationOptions options;
  options.method = CalibrationMethod::Awq;
  const IntGridSpec spec{3, 128, false};
  const CalibrationResult awq = quantize_calibrated(c.model, c.windows, uniform_int_grid(spec), options);
  ASSERT_EQ(awq.report.linears.size(), 28u);
  double sum = 0, sum_rtn = 0;
  for (const LinearReport& r : awq.report.linears) {
    sum += r.error, sum_rtn += r.rtn_error;
    EXPECT_GE(r.awq_alpha, -1.0);
  }
  EXPECT_LT(sum, 0.95 * sum_rtn) << "AWQ " << sum / 28 << " RTN " << sum_rtn / 28;

  Model rtn_model = original;
  options.method = CalibrationMethod::Rtn;
  quantize_calibrated(rtn_model, c.windows, uniform_int_grid(spec), options);
  const ModelRunner ref(original);
  const ComparisonResult with_awq = compare_models(ref, ModelRunner(c.model), c.eval);
  const ComparisonResult with_rtn = compare_models(ref, ModelRunner(rtn_model), c.eval);
  EXPECT_LT(with_awq.mean_kl, with_rtn.mean_kl);
  EXPECT_LT(with_awq.candidate.perplexity, with_rtn.candidate.perplexity);
}

TEST(GptqCalibration, ByteIdenticalForAnyThreadCountAndBetterThanRtn) {
  std::vector<Model> models;
  std::vector<CalibrationResult> results;
  for (int threads : {1, 2}) {
    set_thread_count(threads);
    Calibration c = kjv(8);
    CalibrationOptions options;
    options.gptq.act_order = true;
    options.progress = false;
    results.push_back(quantize_calibrated(c.model, c.windows, uniform_int_grid({4, 32, false}), options));
    models.push_back(std::move(c.model));
  }
  set_thread_count(0);
  for (const auto& [name, t] : models[0].tensors())
    EXPECT_EQ(t.to_f32(), models[1].tensor(name).to_f32()) << name;
  ASSERT_EQ(results[0].int_weights.size(), 28u);
  for (const auto& [name, w] : results[0].int_weights) EXPECT_EQ(w.codes, results[1].int_weights.at(name).codes);
  for (const LinearReport& r : results[0].report.linears)
    EXPECT_LT(r.error, r.rtn_error) << r.name << " gptq " << r.error << " rtn " << r.rtn_error;
  EXPECT_GT(results[0].report.solver_flops, 0);
}

TEST(GptqCalibration, ResultWritesAndReadsBackAsTheSameModel) {
  Calibration c = kjv(4);
  CalibrationOptions options;
  options.progress = false;
  const CalibrationResult r = quantize_calibrated(c.model, c.windows, uniform_int_grid({4, 128, true}), options);
  const std::string dir = testing::scratch_dir("calibrated") + "/kjv-gptq";
  HfQuantizedWriteOptions w;
  w.float_type = DType::F32;
  write_hf_quantized(c.model, r.hf_weights(), dir, w);
  const Model back = load_hf_quantized(dir);
  for (const auto& [name, codes] : r.int_weights) EXPECT_EQ(back.tensor(name).to_f32(), c.model.tensor(name).to_f32());
  const std::vector<int32_t> tokens(c.windows[0].begin(), c.windows[0].begin() + 20);
  EXPECT_EQ(ModelRunner(back).logits(tokens), ModelRunner(c.model).logits(tokens));
}

TEST(GptqCalibration, GgufPresetLeavesStockBlocksOfTheChosenTypes) {
  Calibration c = kjv(4);
  TypeSelectionOptions selection;
  selection.preset = QuantPreset::Q4_K_M;
  const TargetChooser choose = gguf_preset_targets(c.model, selection);
  CalibrationOptions options;
  options.progress = false;
  const CalibrationResult r = quantize_calibrated(c.model, c.windows, choose, options);
  ASSERT_EQ(r.report.linears.size(), 28u);
  EXPECT_TRUE(r.int_weights.empty());
  EXPECT_EQ(c.model.tensor(names::q_proj(1)).dtype(), DType::Q4_K);
  // Q4_K_M gives attn_v more bits where use_more_bits holds: with 4 layers, layers 2 and 3.
  EXPECT_EQ(c.model.tensor(names::v_proj(0)).dtype(), DType::Q4_K);
  EXPECT_EQ(c.model.tensor(names::v_proj(3)).dtype(), DType::Q6_K);
  for (const LinearReport& l : r.report.linears) {
    EXPECT_EQ(l.grid, dtype_name(c.model.tensor(l.name).dtype()));
    EXPECT_LT(l.error, l.rtn_error) << l.name;
  }
  EXPECT_EQ(c.model.tensor(names::kLmHead).dtype(), DType::BF16);  // not a block linear: the GGUF writer's job
  const std::vector<int32_t> tokens(c.windows[0].begin(), c.windows[0].begin() + 16);
  EXPECT_TRUE(ModelRunner(c.model).logits(tokens).allFinite());
}

}  // namespace
}  // namespace slmopt
