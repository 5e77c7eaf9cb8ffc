// Structurally pruned models run in the real consumers with the logits slmopt computes for them. The bundled
// llama-5m-kjv (4 layers, 4 query heads in 2 KV groups, 768 FFN channels) is pruned on 2 calibration windows and
// written as F32; llama.cpp (node-llama-cpp, via llama_cpp_harness.mjs) and ONNX Runtime (onnxruntime-node, via
// ort_harness.mjs) must then agree with slmopt's ModelRunner on the pruned IR:
//   * uniform cut (activation importance; one KV group of two kept per layer → 2 heads / 1 KV head, 25 % of the
//     FFN channels removed): GGUF → llama.cpp (max |Δlogit| ≤ 1e-3 × logit range, argmax agreement ≥ 99.9 %,
//     mean NLL within 0.1 %) and ONNX → ORT (max |Δlogit| ≤ 1e-4 × range, argmax ≥ 99.9 %);
//   * per-layer counts (random importance, CountPolicy::PerLayer, so layers keep different head / KV head / FFN
//     counts): GGUF, which write_gguf emits as llama.cpp's "deci" architecture, → llama.cpp with the same bounds;
//     ONNX export cannot express per-layer widths and must refuse with Error(Unsupported) naming the file.
// Evaluation: 2 windows of 128 eval-text tokens (BOS first), each from position 0.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <iostream>

#include "llama_cpp_consumer.h"
#include "ort_consumer.h"
#include "slmopt/core/error.h"
#include "slmopt/exec/log_softmax.h"
#include "slmopt/exec/model_runner.h"
#include "slmopt/io/gguf.h"
#include "slmopt/io/model_loader.h"
#include "slmopt/io/onnx_export.h"
#include "slmopt/prune/importance.h"
#include "slmopt/prune/structured.h"
#include "slmopt/text/dataset.h"
#include "slmopt/text/tokenizer.h"
#include "test_support.h"

namespace slmopt {
namespace {

constexpr int64_t kWindowTokens = 128;

std::vector<int32_t> text_tokens(const Model& model, const char* text) {
  const Tokenizer tokenizer(model.vocab);
  return tokenize_file(tokenizer, testing::data_path(text));
}

// `count` windows of kWindowTokens tokens from the start of `text`, each beginning with BOS.
std::vector<std::vector<int32_t>> windows_of(const Model& model, const char* text, int64_t count) {
  const std::vector<int32_t> ids = text_tokens(model, text);
  std::vector<std::vector<int32_t>> windows;
  for (int64_t w = 0; w < count; ++w) {
    std::vector<int32_t> window;
    if (model.vocab.bos_id) window.push_back(*model.vocab.bos_id);
    const auto begin = ids.begin() + w * kWindowTokens;
    window.insert(window.end(), begin, begin + (kWindowTokens - static_cast<int64_t>(window.size())));
    windows.push_back(std::move(window));
  }
  return windows;
}

// The source model, pruned by `spec` from `method` scores on 2 calibration windows.
Model pruned_model(ImportanceMethod method, const PruneSpec& spec) {
  Model model = load_model(testing::model_path("llama-5m-kjv"));
  const auto calibration = windows_of(model, "kjv-calib.txt", 2);
  ImportanceOptions options;
  options.method = method;
  options.seed = 7;
  const ImportanceScores scores = compute_importance(ModelRunner(model), calibration, options);
  apply_prune_plan(model, plan_pruning(model.config, scores, spec));
  return model;
}

struct Agreement {
  double max_diff = 0;
  double range = 0;
  double argmax_share = 0;
  double nll_ours = 0;
  double nll_theirs = 0;
  int64_t rows = 0;
  double diff_rel() const { return max_diff / range; }
  double nll_rel() const { return std::abs(nll_ours - nll_theirs) / nll_ours; }
};

// Compares the consumer's logits (windows concatenated row-major, [rows, n_vocab]) with ModelRunner's, window
// by window; the range is that of slmopt's logits.
Agreement compare(const ModelRunner& runner, const std::vector<std::vector<int32_t>>& windows, const float* theirs,
                  int64_t n_vocab) {
  Agreement a;
  float lo = INFINITY, hi = -INFINITY;
  double nll_ours = 0, nll_theirs = 0;
  int64_t terms = 0, agree = 0;
  for (const auto& w : windows) {
    const RowMatrix ours = runner.logits(w);
    const int64_t n = static_cast<int64_t>(w.size());
    RowMatrix other(n, n_vocab);
    std::copy(theirs + a.rows * n_vocab, theirs + (a.rows + n) * n_vocab, other.data());
    a.max_diff = std::max(a.max_diff, static_cast<double>((ours - other).cwiseAbs().maxCoeff()));
    lo = std::min(lo, ours.minCoeff());
    hi = std::max(hi, ours.maxCoeff());
    for (int64_t r = 0; r < n; ++r) agree += argmax(row_span(ours, r)) == argmax(row_span(other, r));
    const std::vector<double> mine = next_token_nll(ours, w), others = next_token_nll(other, w);
    for (size_t i = 0; i < mine.size(); ++i) nll_ours += mine[i], nll_theirs += others[i], ++terms;
    a.rows += n;
  }
  a.range = hi - lo;
  a.argmax_share = static_cast<double>(agree) / static_cast<double>(a.rows);
  a.nll_ours = nll_ours / static_cast<double>(terms);
  a.nll_theirs = nll_theirs / static_cast<double>(terms);
  return a;
}

void report(const std::string& what, const Agreement& a) {
  std::cout << fmt::format("[ pruned ] {:28s}: max |dlogit| {:.2e} ({:.2e} of range {:.2f}); argmax {:.2f} % of {}; "
                           "mean NLL slmopt {:.6f} consumer {:.6f} (rel. diff {:.2e})\n",
                           what, a.max_diff, a.diff_rel(), a.range, 100 * a.argmax_share, a.rows, a.nll_ours,
                           a.nll_theirs, a.nll_rel());
}

std::string layer_counts(const Config& c) {
  std::string s;
  for (int64_t l = 0; l < c.num_layers; ++l)
    s += fmt::format("{}L{}: {} heads / {} kv / {} ffn", l ? ", " : "", l, c.heads(l), c.kv_heads(l), c.ffn(l));
  return s;
}

// llama.cpp on the F32 GGUF of `model` against ModelRunner: the bounds of the F32 GGUF consumer tests.
// `arch` is the GGUF architecture write_gguf must choose ("llama" for uniform counts, "deci" for per-layer ones).
void expect_llama_cpp_matches(const Model& model, const std::string& name, const std::string& arch) {
  const RemovedOnExit scratch{testing::scratch_dir("pruned_llama_cpp_" + name)};
  const std::string gguf = scratch.path + "/" + name + ".gguf";
  GgufWriteOptions options;
  options.choose_dtype = [](const std::string&, const Tensor&) { return DType::F32; };
  write_gguf(model, gguf, options);
  EXPECT_NE(read_text_file(gguf).find(arch + ".block_count"), std::string::npos) << gguf << " is not " << arch;
  const auto windows = windows_of(model, "kjv-eval.txt", 2);
  const LlamaCppEval theirs = llama_cpp_eval(gguf, windows, scratch.path);
  const int64_t n_vocab = theirs.summary["n_vocab"].get<int64_t>();
  ASSERT_EQ(n_vocab, model.config.vocab_size);
  ASSERT_EQ(theirs.logits_bytes.size(), static_cast<size_t>(2 * kWindowTokens * n_vocab) * sizeof(float));
  const Agreement a = compare(ModelRunner(model), windows, theirs.logits(), n_vocab);
  report(name + " llama.cpp", a);
  EXPECT_LE(a.diff_rel(), 1e-3);
  EXPECT_GE(a.argmax_share, 0.999);
  EXPECT_LE(a.nll_rel(), 1e-3);
  // The harness's own NLL (its log-softmax of the same logits) tells the same story.
  EXPECT_NEAR(theirs.summary["mean_nll"].get<double>(), a.nll_theirs, 1e-3 * a.nll_theirs);
}

TEST(PrunedConsumers, UniformKvGroupCutMatchesInLlamaCppAndOrt) {
  REQUIRE_LLAMA_CPP();
  SLMOPT_REQUIRE_ORT();
  PruneSpec spec;
  spec.head_unit = HeadUnit::KvGroups;
  spec.heads_per_layer = 2;
  spec.ffn_ratio = 0.25;
  const Model model = pruned_model(ImportanceMethod::Activation, spec);
  const Config& c = model.config;
  std::cout << "[ pruned ] uniform: " << layer_counts(c) << "\n";
  ASSERT_TRUE(c.uniform_layers());
  ASSERT_EQ(c.num_heads, 2);
  ASSERT_EQ(c.num_kv_heads, 1);
  ASSERT_EQ(c.intermediate_size, 576);

  expect_llama_cpp_matches(model, "uniform", "llama");

  const RemovedOnExit scratch{testing::scratch_dir("pruned_ort_uniform")};
  const std::string onnx = scratch.path + "/model.onnx";
  export_onnx(model, onnx);
  const auto windows = windows_of(model, "kjv-eval.txt", 1);
  testing::write_token_json(scratch.path + "/ids.json", windows[0]);
  const std::string logits_path = scratch.path + "/logits.f32";
  testing::run_ort_harness("--model '" + onnx + "' --tokens '" + scratch.path + "/ids.json' --mode full --logits-out '" +
                           logits_path + "'");
  const RowMatrix got = testing::read_logits(logits_path, kWindowTokens, c.vocab_size);
  const Agreement a = compare(ModelRunner(model), windows, got.data(), c.vocab_size);
  report("uniform ORT", a);
  EXPECT_LE(a.diff_rel(), 1e-4);
  EXPECT_GE(a.argmax_share, 0.999);
}

TEST(PrunedConsumers, PerLayerCountsMatchInLlamaCppAndOnnxRefuses) {
  REQUIRE_LLAMA_CPP();
  PruneSpec spec;
  spec.head_unit = HeadUnit::KvGroups;
  spec.head_ratio = 0.25;  // 2 of the 8 KV groups: some layers keep 2 groups, others 1
  spec.ffn_ratio = 0.5;
  spec.ffn_multiple = 32;
  spec.counts = CountPolicy::PerLayer;
  const Model model = pruned_model(ImportanceMethod::Random, spec);
  const Config& c = model.config;
  std::cout << "[ pruned ] per-layer: " << layer_counts(c) << "\n";
  ASSERT_FALSE(c.uniform_layers());
  bool heads_differ = false, ffn_differ = false;
  for (int64_t l = 1; l < c.num_layers; ++l) {
    heads_differ |= c.heads(l) != c.heads(0);
    ffn_differ |= c.ffn(l) != c.ffn(0);
  }
  EXPECT_TRUE(heads_differ);
  EXPECT_TRUE(ffn_differ);

  expect_llama_cpp_matches(model, "per_layer", "deci");

  const RemovedOnExit scratch{testing::scratch_dir("pruned_ort_per_layer")};
  const std::string onnx = scratch.path + "/model.onnx";
  try {
    export_onnx(model, onnx);
    FAIL() << "export_onnx accepted per-layer head/FFN counts";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
    EXPECT_NE(std::string(e.what()).find(onnx), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("same head and FFN counts in every layer"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(onnx));
}

}  // namespace
}  // namespace slmopt
