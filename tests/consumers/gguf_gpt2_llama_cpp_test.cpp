// The bundled GPT-2 (models/capp-gpt2-onnx, ONNX import) written as GGUF in llama.cpp's "gpt2" architecture and
// run by llama.cpp itself (node-llama-cpp's prebuilt CPU library via llama_cpp_harness.mjs): its logits must
// match slmopt's forward pass on the source model — max |Δlogit| ≤ 1e-3 × logit range, argmax agreement
// ≥ 99.9 %, mean NLL within 0.1 % — on windows of the model's own ids (0..52: process plans of the kind it was
// trained on, and a long pseudo-random window that reaches far into the position table). The model has no
// tokenizer; the GGUF carries the placeholder token list described in src/io/gguf_gpt2.cpp, and llama.cpp is
// fed ids directly.
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

TEST(LlamaCppGpt2, CappF32LogitsAgreeWithSlmoptsForwardPass) {
  REQUIRE_LLAMA_CPP();
  const Model model = load_model(testing::model_path("capp-gpt2-onnx/model.onnx"));
  const RemovedOnExit scratch{testing::scratch_dir("gguf_gpt2_llama_cpp")};
  const std::string gguf = scratch.path + "/capp-F32.gguf";
  write_gguf(model, gguf);

  const auto windows = capp_windows();
  const LlamaCppEval theirs = llama_cpp_eval(gguf, windows, scratch.path);
  const int64_t n_vocab = theirs.summary["n_vocab"].get<int64_t>();
  ASSERT_EQ(n_vocab, 53);
  int64_t n_tokens = 0;
  for (const auto& w : windows) n_tokens += static_cast<int64_t>(w.size());
  ASSERT_EQ(theirs.summary["n_tokens"].get<int64_t>(), n_tokens);
  ASSERT_EQ(theirs.logits_bytes.size(), static_cast<size_t>(n_tokens * n_vocab) * sizeof(float));

  const ModelRunner runner(model);
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
  std::cout << fmt::format("[ llama.cpp ] capp-gpt2 F32: mean NLL slmopt {:.6f} llama.cpp {:.6f} (rel. diff {:.2e}); "
                           "argmax agreement {:.2f} % of {}; max |dlogit| {:.2e} ({:.2e} of range {:.2f})\n",
                           slmopt_nll, llama_nll, nll_rel, 100 * agreement, n_tokens, max_diff, diff_rel, hi - lo);
  RecordProperty("slmopt_mean_nll", fmt::format("{:.6f}", slmopt_nll));
  RecordProperty("llama_cpp_mean_nll", fmt::format("{:.6f}", llama_nll));
  RecordProperty("argmax_agreement", fmt::format("{:.6f}", agreement));
  RecordProperty("max_logit_diff", fmt::format("{:.3e}", max_diff));
  EXPECT_LE(nll_rel, 1e-3);
  EXPECT_GE(agreement, 0.999);
  EXPECT_LE(diff_rel, 1e-3);
}

}  // namespace
}  // namespace slmopt
