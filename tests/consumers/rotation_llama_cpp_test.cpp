// Rotated checkpoints (quant/rotation.h) in stock runtimes, each written by its registered stage exactly as the
// subcommand does (pipeline::run_single_stage):
//   compile --rotate --type f32 (GGUF): llama-5m-kjv, tinystories-656k (tied → untied) and three family configs
//     (smollm2: width 96 = H32 ⊗ 3, tied; qwen3: per-head q/k norms; llama3.2: llama3 RoPE scaling, head_dim 16)
//     run in llama.cpp with the ORIGINAL model's logits (slmopt's forward pass of the unrotated checkpoint):
//     argmax 100 %, max |Δlogit| ≤ 1e-4 of the logit range (llama.cpp's F32 graph differs from slmopt only in
//     summation order).
//   compile --rotate --rotate-tied keep (tinystories-656k): runs in llama.cpp as slmopt evaluates the same file
//     (the kept tie changes the function, so the comparison is with the file).
//   quantize --rotate (Q4_K_M imatrix RTN; Q3_K_M GPTQ) of llama-5m-kjv: llama.cpp's mean NLL within 1 % of slmopt's
//     evaluation of the same file, argmax ≥ 90 % (llama.cpp rounds activations to 8 bits in quantized products).
//   compile --rotate --format onnx (F32) of llama-5m-kjv in ONNX Runtime: the original model's logits, argmax
//     100 %, max |Δlogit| ≤ 1e-4 of the range.
// All GGUF files run in one llama.cpp harness process on one 64-token window of kjv-eval.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "llama_cpp_consumer.h"
#include "stage_runner.h"
#include "ort_consumer.h"
#include "slmopt/core/error.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/exec/log_softmax.h"
#include "slmopt/exec/model_runner.h"
#include "slmopt/io/gguf.h"
#include "slmopt/io/hf.h"
#include "slmopt/io/model_loader.h"
#include "slmopt/ir/random_weights.h"
#include "slmopt/pipeline/stage.h"
#include "slmopt/text/tokenizer.h"
#include "family_configs.h"
#include "test_support.h"

namespace slmopt {
namespace {

constexpr int64_t kWindow = 64;

using testing::run_stage;

struct Case {
  std::string key, source, file;  // source: the checkpoint the file must match (empty: the file itself)
  bool quantized = false;
  std::vector<int32_t> window;
};

struct Runs {
  std::vector<Case> cases;
  std::map<std::string, nlohmann::json> results;
  std::map<std::string, std::string> logits;
  std::string onnx_path;
  std::vector<int32_t> kjv_window;
  std::string error;
};

std::vector<int32_t> kjv_window() {
  const Model model = load_model(testing::model_path("llama-5m-kjv"));
  const Tokenizer tokenizer(model.vocab);
  std::vector<int32_t> ids = tokenizer.encode(read_text_file(testing::data_path("kjv-eval.txt")), false);
  ids.resize(kWindow);
  return ids;
}

const Runs& runs() {
  static std::mutex mutex;
  static const RemovedOnExit scratch{testing::scratch_dir("rotation_llama_cpp")};
  static Runs out;
  static bool done = false;
  std::lock_guard lock(mutex);
  if (done) return out;
  done = true;
  try {
    const std::string kjv = testing::model_path("llama-5m-kjv");
    const std::string tiny = testing::model_path("tinystories-656k");
    out.kjv_window = kjv_window();
    std::vector<int32_t> small(kWindow);
    for (int64_t i = 0; i < kWindow; ++i) small[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7919 + 13) % 512);
    const std::string s = scratch.path + "/";
    auto add = [&](std::string key, std::string source, std::string file, bool quantized, std::vector<int32_t> w) {
      out.cases.push_back({std::move(key), std::move(source), std::move(file), quantized, std::move(w)});
    };
    run_stage("compile", {{"MODEL", kjv}, {"output", s + "kjv-f32.gguf"}, {"type", std::string("f32")}, {"rotate", true}});
    add("kjv/f32", kjv, s + "kjv-f32.gguf", false, out.kjv_window);
    run_stage("compile", {{"MODEL", tiny}, {"output", s + "tiny-f32.gguf"}, {"type", std::string("f32")}, {"rotate", true}});
    add("tinystories/f32 untied", tiny, s + "tiny-f32.gguf", false, small);
    run_stage("compile", {{"MODEL", tiny}, {"output", s + "tiny-keep.gguf"}, {"type", std::string("f32")},
                          {"rotate", true}, {"rotate-tied", std::string("keep")}});
    add("tinystories/f32 kept tie", "", s + "tiny-keep.gguf", false, small);
    for (const char* family : {"smollm2", "qwen3", "llama3.2"}) {
      Config config = testing::family_config(family);
      config.vocab_size = std::min<int64_t>(config.vocab_size, 512);
      config.max_position = std::min<int64_t>(config.max_position, 256);
      const std::string checkpoint = s + "model-" + family;
      write_hf_model(random_model(config, DType::F32, 23), checkpoint);
      const std::string file = s + family + "-f32.gguf";
      run_stage("compile", {{"MODEL", checkpoint}, {"output", file}, {"type", std::string("f32")}, {"rotate", true}});
      add(std::string(family) + "/f32", checkpoint, file, false, small);
    }
    const std::map<std::string, pipeline::OptionValue> calib = {
        {"calib", testing::source_dir() + "/models/data/kjv-calib.txt"}, {"calib-samples", int64_t{8}},
        {"calib-seqlen", int64_t{64}}};
    auto quantize = [&](const std::string& name, std::map<std::string, pipeline::OptionValue> options) {
      options.insert(calib.begin(), calib.end());
      options["MODEL"] = kjv;
      options["output"] = s + name + ".gguf";
      options["rotate"] = true;
      run_stage("quantize", options);
      add("kjv/" + name, "", s + name + ".gguf", true, out.kjv_window);
    };
    quantize("q4_k_m-imatrix", {{"type", std::string("q4_k_m")}});
    quantize("q3_k_m-gptq", {{"type", std::string("q3_k_m")}, {"method", std::string("gptq")}});
    run_stage("compile", {{"MODEL", kjv}, {"output", s + "kjv-onnx"}, {"format", std::string("onnx")}, {"rotate", true}});
    out.onnx_path = s + "kjv-onnx/onnx/model.onnx";

    // The files with small vocabularies run on ids below 512.
    std::ofstream(s + "window.json") << nlohmann::json(std::vector<std::vector<int32_t>>{small}).dump();
    std::ofstream(s + "kjv-window.json") << nlohmann::json(std::vector<std::vector<int32_t>>{out.kjv_window}).dump();
    // Two harness runs (two windows): the KJV files on real text, the others on the small-id window.
    for (const bool kjv_files : {true, false}) {
      std::vector<std::string> a = {"eval-many", s + (kjv_files ? "kjv-window.json" : "window.json"),
                                    s + (kjv_files ? "kjv-logits" : "small-logits")};
      std::filesystem::create_directories(a[2]);
      std::vector<std::string> keys;
      for (const Case& c : out.cases)
        if ((c.window == out.kjv_window) == kjv_files) a.push_back(c.file), keys.push_back(c.key);
      const auto doc = nlohmann::json::parse(testing::run_node_script(kLlamaCppHarness, a));
      for (size_t k = 0; k < keys.size(); ++k) {
        out.results[keys[k]] = doc["models"][k];
        out.logits[keys[k]] = read_text_file(a[2] + "/" + std::to_string(k) + ".bin");
      }
    }
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  return out;
}

TEST(RotatedCheckpoints, RunInLlamaCppAsTheOriginalModel) {
  REQUIRE_LLAMA_CPP();
  const Runs& r = runs();
  ASSERT_TRUE(r.error.empty()) << r.error;
  for (const Case& c : r.cases) {
    SCOPED_TRACE(c.key);
    const nlohmann::json& result = r.results.at(c.key);
    const Model reference = load_model(c.source.empty() ? c.file : c.source);
    const RowMatrix ours = ModelRunner(reference).logits(c.window);
    const int64_t vocab = ours.cols();
    const std::string& bytes = r.logits.at(c.key);
    ASSERT_EQ(bytes.size(), static_cast<size_t>(kWindow * vocab) * sizeof(float));
    const float* theirs = reinterpret_cast<const float*>(bytes.data());
    double max_diff = 0;
    int64_t agree = 0;
    for (int64_t i = 0; i < kWindow; ++i) {
      for (int64_t t = 0; t < vocab; ++t)
        max_diff = std::max(max_diff, static_cast<double>(std::abs(ours(i, t) - theirs[i * vocab + t])));
      agree += argmax(row_span(ours, i)) == result["argmax"][i].get<int32_t>();
    }
    const double range = ours.maxCoeff() - ours.minCoeff();
    double nll = 0;
    for (double x : next_token_nll(ours, c.window)) nll += x;
    const double slmopt_nll = nll / static_cast<double>(kWindow - 1), llama_nll = result["mean_nll"].get<double>();
    const double argmax_share = static_cast<double>(agree) / kWindow;
    std::cout << fmt::format("[ llama.cpp ] {:26s} vs {:8s}: argmax {:6.2f} %, max |dlogit| {:.2e} ({:.2e} of range "
                             "{:.2f}), mean NLL slmopt {:.5f} llama.cpp {:.5f}, {} bytes\n",
                             c.key, c.source.empty() ? "the file" : "original", 100 * argmax_share, max_diff,
                             max_diff / range, range, slmopt_nll, llama_nll, std::filesystem::file_size(c.file));
    if (c.quantized) {
      EXPECT_GE(argmax_share, 0.90);
      EXPECT_LE(std::abs(slmopt_nll - llama_nll) / llama_nll, 0.01);
    } else {
      EXPECT_EQ(argmax_share, 1.0);
      EXPECT_LE(max_diff, 1e-4 * range);
    }
  }
}

TEST(RotatedCheckpoints, OnnxExportRunsInOrtAsTheOriginalModel) {
  SLMOPT_REQUIRE_ORT();
  const Runs& r = runs();
  ASSERT_TRUE(r.error.empty()) << r.error;
  const std::string dir = std::filesystem::path(r.onnx_path).parent_path().string();
  testing::write_token_json(dir + "/ids.json", r.kjv_window);
  testing::run_ort_harness("--model '" + r.onnx_path + "' --tokens '" + dir + "/ids.json' --mode full --logits-out '" +
                           dir + "/logits.f32'");
  const Model original = load_model(testing::model_path("llama-5m-kjv"));
  const RowMatrix ours = ModelRunner(original).logits(r.kjv_window);
  const RowMatrix theirs = testing::read_logits(dir + "/logits.f32", kWindow, original.config.vocab_size);
  int64_t agree = 0;
  for (int64_t i = 0; i < kWindow; ++i) agree += argmax(row_span(ours, i)) == argmax(row_span(theirs, i));
  const double range = ours.maxCoeff() - ours.minCoeff(), max_diff = (ours - theirs).cwiseAbs().maxCoeff();
  std::cout << fmt::format("[ ORT ] kjv rotated F32 ONNX vs original: argmax {} / {}, max |dlogit| {:.2e} ({:.2e} of "
                           "range {:.2f})\n", agree, kWindow, max_diff, max_diff / range, range);
  EXPECT_EQ(agree, kWindow);
  EXPECT_LE(max_diff, 1e-4 * range);
}

}  // namespace
}  // namespace slmopt
