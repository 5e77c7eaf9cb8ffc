// Calibrated quantization at scale (issue 10): the block-by-block calibrator (quant/calibration.h), which keeps
// only the current block's inputs of every window, gives exactly what the published sequential GPTQ recipe
// gives when every statistic is recomputed from the token ids through the partially quantized model (a full
// forward pass per window per stage, nothing streamed); it keeps one block's activations alive whatever the
// depth, and its output is byte-identical for 1, 2 and 3 threads.
#include <gtest/gtest.h>

#include <set>

#include "slmopt/core/error.h"
#include "slmopt/core/parallel.h"
#include "slmopt/exec/model_runner.h"
#include "slmopt/io/hf.h"
#include "slmopt/ir/tensor_names.h"
#include "slmopt/quant/calibration.h"
#include "slmopt/quant/input_statistics.h"
#include "slmopt/text/dataset.h"
#include "slmopt/text/tokenizer.h"
#include "test_support.h"

namespace slmopt {
namespace {

struct CalibSet {
  Model model;
  std::vector<std::vector<int32_t>> windows;
};

CalibSet kjv(int64_t windows, int64_t seqlen) {
  CalibSet s{load_hf_model(testing::model_path("llama-5m-kjv")), {}};
  const Tokenizer tok(s.model.vocab);
  s.windows = sample_calibration_windows(tokenize_file(tok, testing::data_path("kjv-calib.txt")), windows, seqlen, 3,
                                         s.model.vocab.bos_id);
  return s;
}

// Adds each window's input of the named linears (at one layer) to their statistics, in window order.
class StatsObserver : public LinearObserver {
 public:
  explicit StatsObserver(std::map<std::string, InputStatistics>& stats) : stats_(stats) {}
  void on_linear(const LinearActivation& a) override {
    auto it = stats_.find(a.weight);
    if (it != stats_.end()) it->second.add(a.input);
  }

 private:
  std::map<std::string, InputStatistics>& stats_;
};

// The published recipe, recomputed from scratch: for each block and each true-sequential stage, run every window
// from its token ids through the whole current model (earlier blocks and earlier stages already quantized),
// gather XᵀX of the stage's linears, and GPTQ them onto the grid.
void reference_sequential_gptq(Model& model, const std::vector<std::vector<int32_t>>& windows, const IntGridSpec& spec,
                               const GptqOptions& options) {
  for (int64_t l = 0; l < model.config.num_layers; ++l) {
    const std::vector<std::vector<std::string>> stages = {
        {names::q_proj(l), names::k_proj(l), names::v_proj(l)}, {names::o_proj(l)},
        {names::gate_proj(l), names::up_proj(l)}, {names::down_proj(l)}};
    for (const auto& stage : stages) {
      std::map<std::string, InputStatistics> stats;
      for (const std::string& name : stage) stats.emplace(name, InputStatistics(model.tensor(name).cols()));
      const ModelRunner runner(model);
      StatsObserver observer(stats);
      RunOptions run;
      run.observer = &observer;
      for (const auto& w : windows) runner.logits(w, run);
      for (const std::string& name : stage) {
        const Tensor& t = model.tensor(name);
        IntWeightGrid grid(t.rows(), t.cols(), spec);
        gptq_quantize(t.to_f32(), stats.at(name).hessian(), grid, options);
        const std::vector<int64_t> shape = t.shape();
        model.set(Tensor::from_f32(name, shape, grid.take().dequantize()));
      }
    }
  }
}

TEST(CalibrationStream, EqualsTheSequentialRecipeRecomputedFromTokens) {
  CalibSet s = kjv(4, 64);
  Model reference = s.model;
  const IntGridSpec spec{4, 32, false};
  CalibrationOptions options;
  options.progress = false;
  quantize_calibrated(s.model, s.windows, uniform_int_grid(spec), options);
  reference_sequential_gptq(reference, s.windows, spec, options.gptq);
  int64_t compared = 0;
  for (const auto& [name, t] : reference.tensors()) {
    EXPECT_EQ(s.model.tensor(name).to_f32(), t.to_f32()) << name;  // bit for bit
    ++compared;
  }
  EXPECT_GT(compared, 28);
}

TEST(CalibrationStream, KeepsOneBlockOfActivationsWhateverTheDepth) {
  CalibSet s = kjv(3, 64);
  const Config& c = s.model.config;
  CalibrationOptions options;
  options.progress = false;
  const CalibrationResult r = quantize_calibrated(s.model, s.windows, uniform_gguf_type(DType::Q8_0), options);
  // Every window's block input, one chunk (≤ 16 windows) of copies, and that chunk's captured linear inputs
  // (at most the MLP input and the MLP's inner activation of each window of the chunk).
  const int64_t tokens = r.report.tokens, hidden = c.hidden_size;
  const int64_t one_block = (2 * tokens * hidden + tokens * std::max(hidden, c.intermediate_size)) * 4;
  // Exactly that (the down_proj stage), with no term that grows with the 4 blocks of the model.
  ASSERT_GT(c.intermediate_size, hidden);
  EXPECT_EQ(r.report.peak_activation_bytes, one_block);
  EXPECT_GT(r.report.hessian_seconds, 0);
  EXPECT_GT(r.report.factor_seconds, 0);
}

TEST(CalibrationStream, GgufPresetByteIdenticalForOneTwoAndThreeThreads) {
  std::vector<Model> models;
  for (int threads : {1, 2, 3}) {
    set_thread_count(threads);
    CalibSet s = kjv(3, 64);
    TypeSelectionOptions selection;
    selection.preset = QuantPreset::Q4_K_M;
    CalibrationOptions options;
    options.progress = false;
    quantize_calibrated(s.model, s.windows, gguf_preset_targets(s.model, selection), options);
    models.push_back(std::move(s.model));
  }
  set_thread_count(0);
  for (const auto& [name, t] : models[0].tensors()) {
    const auto bytes = [](const Tensor& x) { return std::vector<uint8_t>(x.data(), x.data() + x.nbytes()); };
    EXPECT_EQ(bytes(t), bytes(models[1].tensor(name))) << name;
    EXPECT_EQ(bytes(t), bytes(models[2].tensor(name))) << name;
  }
}

// GPTAQ's asymmetric calibration (CalibrationOptions::gptq_asym) runs the float blocks alongside: it changes
// the result (block 0's q/k/v see identical inputs either way, so only the correction differs there) and stays
// byte-identical for 1 and 3 threads.
TEST(CalibrationStream, GptaqChangesTheCodesAndIsThreadIndependent) {
  std::vector<Model> models;
  for (int threads : {1, 3}) {
    set_thread_count(threads);
    CalibSet s = kjv(3, 64);
    CalibrationOptions options;
    options.progress = false;
    options.gptq_asym = 0.25;
    quantize_calibrated(s.model, s.windows, uniform_gguf_type(DType::Q4_0), options);
    models.push_back(std::move(s.model));
  }
  set_thread_count(0);
  const auto bytes = [](const Tensor& x) { return std::vector<uint8_t>(x.data(), x.data() + x.nbytes()); };
  for (const auto& [name, t] : models[0].tensors()) EXPECT_EQ(bytes(t), bytes(models[1].tensor(name))) << name;
  CalibSet plain = kjv(3, 64);
  CalibrationOptions options;
  options.progress = false;
  quantize_calibrated(plain.model, plain.windows, uniform_gguf_type(DType::Q4_0), options);
  // Block 0's q/k/v: same inputs (the embedding), no asymmetry yet, so the same codes; later blocks differ.
  EXPECT_EQ(bytes(plain.model.tensor(names::q_proj(0))), bytes(models[0].tensor(names::q_proj(0))));
  EXPECT_NE(bytes(plain.model.tensor(names::down_proj(3))), bytes(models[0].tensor(names::down_proj(3))));
  options.method = CalibrationMethod::Awq;
  EXPECT_THROW(quantize_calibrated(plain.model, plain.windows, uniform_gguf_type(DType::Q4_0),
                                   [&] { auto o = options; o.gptq_asym = 0.25; return o; }()),
               Error);
}

// --gptq-refit (CalibrationOptions::gptq_refits) on Q4_0: block 0's q/k/v see the same inputs with and without
// it, and there each linear's output error with refits is at most the plain GPTQ error; the rounds are used.
TEST(CalibrationStream, GptqRefitNeverRaisesTheErrorAndIsUsed) {
  const auto run = [](int refits) {
    CalibSet s = kjv(3, 64);
    CalibrationOptions options;
    options.progress = false;
    options.gptq_refits = refits;
    return quantize_calibrated(s.model, s.windows, uniform_gguf_type(DType::Q4_0), options).report;
  };
  const CalibrationReport plain = run(0), refit = run(2);
  ASSERT_EQ(plain.linears.size(), refit.linears.size());
  int used = 0;
  for (size_t i = 0; i < refit.linears.size(); ++i) {
    used += refit.linears[i].gptq_refits;
    EXPECT_EQ(plain.linears[i].gptq_refits, 0);
    const std::string& name = refit.linears[i].name;
    if (name == names::q_proj(0) || name == names::k_proj(0) || name == names::v_proj(0)) {
      EXPECT_LE(refit.linears[i].error, plain.linears[i].error) << name;
      EXPECT_EQ(refit.linears[i].rtn_error, plain.linears[i].rtn_error) << name;  // same inputs, same RTN
    }
  }
  EXPECT_GT(used, 0);
}

// keep_dequantized = false (the HF writer's mode): the same codes and reports as the default, the integer-grid
// linears back to the input tensors in the Model (no F32 copy per linear), everything else as the default leaves it.
TEST(CalibrationStream, CodesOnlyModeGivesTheSameCodesWithoutFloatCopies) {
  for (const CalibrationMethod method : {CalibrationMethod::Gptq, CalibrationMethod::Awq}) {
    CalibSet full = kjv(2, 32), lean = kjv(2, 32);  // small: the modes are compared, not the quality
    const Model input = lean.model;
    CalibrationOptions options;
    options.progress = false;
    options.method = method;
    const IntGridSpec spec{4, 32, false};
    const CalibrationResult a = quantize_calibrated(full.model, full.windows, uniform_int_grid(spec), options);
    options.keep_dequantized = false;
    const CalibrationResult b = quantize_calibrated(lean.model, lean.windows, uniform_int_grid(spec), options);
    ASSERT_EQ(a.int_weights.size(), b.int_weights.size());
    ASSERT_GT(a.int_weights.size(), 0u);
    for (const auto& [name, w] : a.int_weights) {
      const GridQuantizedWeight& v = b.int_weights.at(name);
      EXPECT_EQ(w.codes, v.codes) << name;
      ASSERT_EQ(w.params.size(), v.params.size()) << name;
      for (size_t i = 0; i < w.params.size(); ++i) {
        EXPECT_EQ(w.params[i].scale, v.params[i].scale) << name;
        EXPECT_EQ(w.params[i].zero, v.params[i].zero) << name;
      }
      EXPECT_EQ(lean.model.tensor(name).data(), input.tensor(name).data()) << name;  // the input's own bytes
      EXPECT_EQ(lean.model.tensor(name).dtype(), input.tensor(name).dtype()) << name;
    }
    for (const auto& [name, t] : full.model.tensors())
      if (!a.int_weights.count(name)) {
        EXPECT_EQ(t.to_f32(), lean.model.tensor(name).to_f32()) << name;  // AWQ's folds
      }
    ASSERT_EQ(a.report.linears.size(), b.report.linears.size());
    for (size_t i = 0; i < a.report.linears.size(); ++i) {
      EXPECT_EQ(a.report.linears[i].error, b.report.linears[i].error);
      EXPECT_EQ(a.report.linears[i].weight_error, b.report.linears[i].weight_error);
      EXPECT_GT(b.report.linears[i].weight_error, 0);
    }
  }
}

}  // namespace
}  // namespace slmopt
