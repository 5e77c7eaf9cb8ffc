// The bundled GPT-2 (models/capp-gpt2-onnx, ONNX import) written as GGUF in llama.cpp's "gpt2" architecture and
// run by llama.cpp itself (node-llama-cpp's prebuilt CPU library via llama_cpp_harness.mjs): its logits must
// match slmopt's forward pass on the source model — max |Δlogit| ≤ 1e-3 × logit range, argmax agreement
// ≥ 99.9 %, mean NLL within 0.1 % — on windows of the model's own ids (0..52: process plans of the kind it was
// trained on, and a long pseudo-random window that reaches far into the position table). The model has no
// tokenizer; the GGUF carries the placeholder token list described in src/io/gguf_model_writer.cpp, and llama.cpp is
// fed ids directly. F16 and Q8_0 files are checked against slmopt evaluating the same file through load_gguf
// (llama.cpp also rounds activations for those types, so the bounds are looser; see the cases). The passes'
// outputs run too: an FFN-pruned model (F32) and a GPTQ-calibrated Q4_0 model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <iostream>

#include "llama_cpp_consumer.h"
#include "slmopt/exec/log_softmax.h"
#include "slmopt/exec/model_runner.h"
#include "slmopt/io/gguf.h"
#include "slmopt/io/model_loader.h"
#include "slmopt/ir/tensor_names.h"
#include "slmopt/prune/structured.h"
#include "slmopt/quant/block_quantize.h"
#include "slmopt/quant/calibration.h"
#include "test_support.h"

namespace slmopt {
namespace {

std::vector<std::vector<int32_t>> capp_windows() {
  std::vector<std::vector<int32_t>> windows = {
      {49, 2, 8, 15, 18, 22, 26, 50, 30, 37, 45, 41, 48, 51},
      {49, 0, 7, 14, 17, 21, 25, 50, 29, 36, 45, 51},
      {49, 2, 9, 15, 17, 22, 27, 50, 30, 45, 41, 51},
      {49, 5, 11, 15, 19, 23, 24, 50, 32, 38, 42, 44, 51},
  };
  std::vector<int32_t> long_window;
  for (int32_t i = 0; i < 300; ++i) long_window.push_back((i * 7919 + 13) % 53);
  windows.push_back(long_window);
  return windows;
}

struct Gpt2Case {
  DType dtype;
  double max_nll_rel_diff;
  double min_argmax_agreement;
  double max_logit_diff_rel;
};

// llama.cpp on `gguf` against slmopt's forward pass on `reference`, over the capp windows, within `c`'s bounds.
void expect_llama_cpp_agrees(const std::string& gguf, const Model& reference, const Gpt2Case& c,
                             const std::string& label, const std::string& scratch) {
  const auto windows = capp_windows();
  const LlamaCppEval theirs = llama_cpp_eval(gguf, windows, scratch);
  const int64_t n_vocab = theirs.summary["n_vocab"].get<int64_t>();
  ASSERT_EQ(n_vocab, 53);
  int64_t n_tokens = 0;
  for (const auto& w : windows) n_tokens += static_cast<int64_t>(w.size());
  ASSERT_EQ(theirs.summary["n_tokens"].get<int64_t>(), n_tokens);
  ASSERT_EQ(theirs.logits_bytes.size(), static_cast<size_t>(n_tokens * n_vocab) * sizeof(float));

  const ModelRunner runner(reference);
  double nll_sum = 0, max_diff = 0;
  float lo = INFINITY, hi = -INFINITY;
  int64_t terms = 0, agree = 0, row0 = 0;
  for (const auto& w : windows) {
    const RowMatrix ours = runner.logits(w);
    for (double nll : next_token_nll(ours, w)) nll_sum += nll, ++terms;
    for (int64_t i = 0; i < static_cast<int64_t>(w.size()); ++i) {
      const float* mine = ours.data() + i * n_vocab;
      const float* other = theirs.logits() + (row0 + i) * n_vocab;
      for (int64_t t = 0; t < n_vocab; ++t) {
        max_diff = std::max(max_diff, static_cast<double>(std::abs(mine[t] - other[t])));
        lo = std::min(lo, other[t]);
        hi = std::max(hi, other[t]);
      }
      if (argmax({mine, static_cast<size_t>(n_vocab)}) == theirs.summary["argmax"][row0 + i].get<int32_t>()) ++agree;
    }
    row0 += static_cast<int64_t>(w.size());
  }
  const double slmopt_nll = nll_sum / static_cast<double>(terms);
  const double llama_nll = theirs.summary["mean_nll"].get<double>();
  const double nll_rel = std::abs(slmopt_nll - llama_nll) / llama_nll;
  const double agreement = static_cast<double>(agree) / static_cast<double>(n_tokens);
  const double diff_rel = max_diff / (hi - lo);
  std::cout << fmt::format("[ llama.cpp ] capp-gpt2 {:9s}: mean NLL slmopt {:.6f} llama.cpp {:.6f} (rel. diff {:.2e}); "
                           "argmax agreement {:.2f} % of {}; max |dlogit| {:.2e} ({:.2e} of range {:.2f})\n",
                           label, slmopt_nll, llama_nll, nll_rel, 100 * agreement, n_tokens, max_diff, diff_rel, hi - lo);
  ::testing::Test::RecordProperty("slmopt_mean_nll", fmt::format("{:.6f}", slmopt_nll));
  ::testing::Test::RecordProperty("llama_cpp_mean_nll", fmt::format("{:.6f}", llama_nll));
  ::testing::Test::RecordProperty("argmax_agreement", fmt::format("{:.6f}", agreement));
  ::testing::Test::RecordProperty("max_logit_diff", fmt::format("{:.3e}", max_diff));
  EXPECT_LE(nll_rel, c.max_nll_rel_diff);
  EXPECT_GE(agreement, c.min_argmax_agreement);
  EXPECT_LE(diff_rel, c.max_logit_diff_rel);
}

class LlamaCppGpt2 : public ::testing::TestWithParam<Gpt2Case> {};

TEST_P(LlamaCppGpt2, CappLogitsAgreeWithSlmoptsForwardPass) {
  REQUIRE_LLAMA_CPP();
  const Gpt2Case c = GetParam();
  const std::string type = std::string(dtype_name(c.dtype));
  const Model model = load_model(testing::model_path("capp-gpt2-onnx/model.onnx"));
  const RemovedOnExit scratch{testing::scratch_dir("gguf_gpt2_llama_cpp_" + type)};
  const std::string gguf = scratch.path + "/capp-" + type + ".gguf";
  GgufWriteOptions options;
  options.choose_dtype = [&](const std::string&, const Tensor&) { return c.dtype; };
  options.encode = [](const Tensor& t, DType target) {
    const Tensor q = quantize_tensor(t, target, nullptr, Encoder::Reference);
    return std::vector<uint8_t>(q.data(), q.data() + q.nbytes());
  };
  write_gguf(model, gguf, options);
  // F32: the source model; other types: the same GGUF file as slmopt loads it.
  const Model reference = c.dtype == DType::F32 ? model : load_gguf(gguf);
  expect_llama_cpp_agrees(gguf, reference, c, type, scratch.path);
}

// Issue 12 defect 11: a GPT-2 with half its FFN channels cut (the same count in every layer, which llama.cpp's gpt2
// graph sizes from feed_forward_length) runs in llama.cpp as slmopt runs it.
TEST(LlamaCppGpt2Passes, FfnPrunedGgufRuns) {
  REQUIRE_LLAMA_CPP();
  Model model = load_model(testing::model_path("capp-gpt2-onnx/model.onnx"));
  PrunePlan plan = full_plan(model.config);
  for (LayerKeep& k : plan.layers) {
    std::vector<int64_t> kept;
    for (size_t i = 0; i < k.ffn.size(); ++i)
      if ((i * 7 + static_cast<size_t>(k.source_layer)) % 2 == 0) kept.push_back(k.ffn[i]);
    k.ffn = kept;
  }
  apply_prune_plan(model, plan);
  ASSERT_EQ(model.config.intermediate_size, 128);
  const RemovedOnExit scratch{testing::scratch_dir("gguf_gpt2_llama_cpp_pruned")};
  const std::string gguf = scratch.path + "/capp-ffn-half.gguf";
  write_gguf(model, gguf);
  expect_llama_cpp_agrees(gguf, model, Gpt2Case{DType::F32, 1e-3, 0.999, 1e-3}, "ffn/2", scratch.path);
}

// Issue 12 defect 1: GPTQ onto Q4_0 blocks (calibrated on capp windows) written as GGUF runs in llama.cpp as
// slmopt runs the same file.
TEST(LlamaCppGpt2Passes, Q4_0GptqGgufRuns) {
  REQUIRE_LLAMA_CPP();
  Model model = load_model(testing::model_path("capp-gpt2-onnx/model.onnx"));
  std::vector<std::vector<int32_t>> calib;
  for (int32_t w = 0; w < 8; ++w) {
    std::vector<int32_t> window;
    for (int32_t i = 0; i < 32; ++i) window.push_back((w * 31 + i * 17 + 5) % 53);
    calib.push_back(window);
  }
  CalibrationOptions options;
  options.method = CalibrationMethod::Gptq;
  options.progress = false;
  const CalibrationResult result = quantize_calibrated(model, calib, uniform_gguf_type(DType::Q4_0), options);
  ASSERT_EQ(result.report.linears.size(), 4u * 6u);
  ASSERT_EQ(model.tensor(names::q_proj(0)).dtype(), DType::Q4_0);
  const RemovedOnExit scratch{testing::scratch_dir("gguf_gpt2_llama_cpp_gptq")};
  const std::string gguf = scratch.path + "/capp-q4_0-gptq.gguf";
  write_gguf(model, gguf);  // the calibrated linears keep their Q4_0 blocks, the rest stays F32
  // llama.cpp rounds activations to Q8_0 blocks before Q4_0 weights, as in the Q8_0 case; on this 64-wide model
  // that flips near-tied argmaxes (measured 97.7–99.4 % depending on the GPTQ solver's rounding), so the
  // agreement bound is 0.97 and the max|Δlogit| bound carries the check.
  expect_llama_cpp_agrees(gguf, load_gguf(gguf), Gpt2Case{DType::Q4_0, 5e-3, 0.97, 3e-2}, "q4_0 gptq", scratch.path);
}

INSTANTIATE_TEST_SUITE_P(Capp, LlamaCppGpt2,
                         ::testing::Values(Gpt2Case{DType::F32, 1e-3, 0.999, 1e-3},
                                           // llama.cpp rounds the activations to F16 before F16 weights.
                                           Gpt2Case{DType::F16, 1e-3, 0.99, 1e-2},
                                           // and to Q8_0 blocks before Q8_0 weights.
                                           Gpt2Case{DType::Q8_0, 5e-3, 0.985, 3e-2}),
                         [](const auto& param_info) { return std::string(dtype_name(param_info.param.dtype)); });

}  // namespace
}  // namespace slmopt
