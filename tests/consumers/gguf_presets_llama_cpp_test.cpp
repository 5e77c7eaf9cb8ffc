// Every quantization preset slmopt writes, loaded and run by llama.cpp (node-llama-cpp's prebuilt CPU library,
// driven by llama_cpp_harness.mjs): the file llama.cpp reads must be the model slmopt means. For each preset of
// llama-5m-kjv (Q2_K … Q8_0, Q4_0 … Q5_1), one Q3_K_M with an importance matrix from kjv-calib.txt, and
// tinystories-656k at Q4_K_M (128-wide rows: every K-quant falls back to a 32-element type), the GGUF is written
// the way `slmopt quantize` writes it (TensorQuantizer with the default encoder + write_gguf) — plus GPTQ and AWQ
// rounding onto the preset's GGUF grids (`--method gptq|awq`, quant/calibration.h) for Q4_0 (also with the
// embedding and head rounded by GPTQ, `--gptq-head-embed`) and Q4_K_M, GPTQ onto
// the lattice i-quant grids (IQ3_S, IQ2_XS, IQ1_M with the importance matrix), and tinystories-656k's narrow rows
// at IQ2_XS (RTN) and Q4_K_M (GPTQ), whose types fall back within the size class (IQ4_NL, Q5_0, Q8_0), and the
// size-matched allocation (`--allocate size`, quant/bit_allocation.h) of IQ2_XS (RTN) and Q3_K_M (GPTQ), whose
// files must also be no larger than the preset's own — then:
//   * llama.cpp's mean NLL over two 128-token eval windows is within 1 % of slmopt's own evaluation of the same
//     file (load_gguf + ModelRunner on the same windows). Measured: at most 1.0e-3 (Q5_K_S, Q6_K), most under
//     5e-4. A wrong block layout, scale or type id turns the output into noise (NLL up by whole nats); the
//     unquantized model's NLL is printed beside them for scale;
//   * argmax agreement between the two is reported and held above a sanity bound (llama.cpp multiplies with
//     activations quantized to Q8_0/Q8_K, slmopt in float, so near-ties flip; see kMinArgmaxAgreement).
// One harness process evaluates all files of a model (eval-many): the suite took 60 s on two cores at load ~5
// (25 s writing the 15 kjv files with the default search encoder, 29 s in llama.cpp, mostly loading each file).
// Each case prints its measurements, the first case of each model the time split.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "slmopt/core/error.h"
#include "slmopt/exec/log_softmax.h"
#include "slmopt/exec/model_runner.h"
#include "slmopt/io/gguf.h"
#include "slmopt/io/model_loader.h"
#include "slmopt/ir/tensor_names.h"
#include "slmopt/quant/bit_allocation.h"
#include "slmopt/quant/calibration.h"
#include "slmopt/quant/importance.h"
#include "slmopt/quant/tensor_quantizer.h"
#include "slmopt/quant/type_selection.h"
#include "slmopt/text/dataset.h"
#include "slmopt/text/tokenizer.h"
#include "test_support.h"

namespace slmopt {
namespace {

constexpr const char* kHarness = "llama_cpp_harness.mjs";
constexpr int64_t kWindowTokens = 128;
constexpr int64_t kWindows = 2;
// Importance matrix for the --calib case: as `slmopt quantize --calib kjv-calib.txt --calib-samples 32
// --calib-seqlen 256` (seed 0) collects it.
constexpr int64_t kCalibSamples = 32;
constexpr int64_t kCalibSeqlen = 256;
constexpr double kMaxNllRelDiff = 0.01;
// Sanity bound, not a target: llama.cpp's quantized dot products round the activations to 8 bits, which flips
// positions whose top-2 logits are close; a layout or scale error gives agreement near chance.
constexpr double kMinArgmaxAgreement = 0.90;

struct PresetCase {
  const char* model;
  QuantPreset preset;
  bool calib = false;
  CalibrationMethod method = CalibrationMethod::Rtn;
  bool allocate = false;  // --allocate size (needs calib)
  bool head_embed = false;  // --gptq-head-embed: the embedding and head rounded by GPTQ too
};

std::string case_name(const PresetCase& c) {
  std::string n = std::string(c.model) + "_" + std::string(preset_info(c.preset).name) + (c.calib ? "_imatrix" : "");
  if (c.method != CalibrationMethod::Rtn) n += std::string("_") + calibration_method_name(c.method);
  if (c.allocate) n += "_allocated";
  if (c.head_embed) n += "_head_embed";
  for (char& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
}

// GoogleTest prints parameters with this (instead of their bytes) in --gtest_list_tests and failures.
void PrintTo(const PresetCase& c, std::ostream* os) { *os << case_name(c); }

const std::vector<PresetCase>& all_cases() {
  static const std::vector<PresetCase> cases = [] {
    std::vector<PresetCase> v;
    for (QuantPreset p : {QuantPreset::Q2_K, QuantPreset::Q3_K_S, QuantPreset::Q3_K_M, QuantPreset::Q3_K_L,
                          QuantPreset::Q4_K_S, QuantPreset::Q4_K_M, QuantPreset::Q5_K_S, QuantPreset::Q5_K_M,
                          QuantPreset::Q6_K, QuantPreset::Q8_0, QuantPreset::Q4_0, QuantPreset::Q4_1,
                          QuantPreset::Q5_0, QuantPreset::Q5_1})
      v.push_back({"llama-5m-kjv", p});
    v.push_back({"llama-5m-kjv", QuantPreset::Q3_K_M, true});
    // The i-quant presets, all with the importance matrix (llama.cpp requires one for most of them).
    for (QuantPreset p : {QuantPreset::IQ4_XS, QuantPreset::IQ3_M, QuantPreset::IQ3_S, QuantPreset::IQ3_XS,
                          QuantPreset::IQ3_XXS, QuantPreset::IQ2_M, QuantPreset::IQ2_S, QuantPreset::IQ2_XS,
                          QuantPreset::IQ2_XXS, QuantPreset::IQ1_M, QuantPreset::IQ1_S})
      v.push_back({"llama-5m-kjv", p, true});
    v.push_back({"llama-5m-kjv", QuantPreset::Q4_0, false, CalibrationMethod::Gptq});
    v.push_back({"llama-5m-kjv", QuantPreset::Q4_0, false, CalibrationMethod::Gptq, false, true});
    v.push_back({"llama-5m-kjv", QuantPreset::Q4_K_M, false, CalibrationMethod::Gptq});
    v.push_back({"llama-5m-kjv", QuantPreset::Q4_K_M, false, CalibrationMethod::Awq});
    // GPTQ onto the lattice i-quant grids (8 columns per codebook point), with the importance matrix for the
    // tensors GPTQ leaves to the writer.
    for (QuantPreset p : {QuantPreset::IQ3_S, QuantPreset::IQ2_XS, QuantPreset::IQ1_M})
      v.push_back({"llama-5m-kjv", p, true, CalibrationMethod::Gptq});
    // Size-matched allocation: per-tensor types across the ladder, within the preset's bytes.
    v.push_back({"llama-5m-kjv", QuantPreset::IQ2_XS, true, CalibrationMethod::Rtn, true});
    v.push_back({"llama-5m-kjv", QuantPreset::Q3_K_M, true, CalibrationMethod::Gptq, true});
    v.push_back({"tinystories-656k", QuantPreset::Q4_K_M});
    // Narrow rows (128/384): every K- and i-quant falls back to its size class's 32-element type (IQ4_NL, Q5_0,
    // Q8_0), with RTN and with GPTQ.
    v.push_back({"tinystories-656k", QuantPreset::IQ2_XS, true});
    v.push_back({"tinystories-656k", QuantPreset::Q4_K_M, false, CalibrationMethod::Gptq});
    return v;
  }();
  return cases;
}

const char* eval_text(const std::string& model) {
  return model == "llama-5m-kjv" ? "kjv-eval.txt" : "tinystories-eval.txt";
}
const char* calib_text(const std::string& model) {
  return model == "llama-5m-kjv" ? "kjv-calib.txt" : "tinystories-calib.txt";
}

std::optional<int32_t> bos_of(const Model& model) {
  return model.vocab.add_bos ? model.vocab.bos_id : std::nullopt;
}

std::vector<std::vector<int32_t>> eval_windows(const Model& model) {
  const Tokenizer tokenizer(model.vocab);
  const std::vector<int32_t> corpus = tokenize_file(tokenizer, testing::data_path(eval_text(model.config.name)));
  std::vector<std::vector<int32_t>> windows;
  for (auto& w : make_eval_windows(corpus, kWindowTokens, bos_of(model), kWindows)) windows.push_back(std::move(w.tokens));
  return windows;
}

// Writes `preset` of `model` as cmd_quantize.cpp does: the preset's per-tensor types, the default (fast)
// encoder, the importance matrix when given, general.file_type from the preset; for GPTQ/AWQ the block linears
// are first rounded onto their GGUF grids by quantize_calibrated on `calib` windows.
void write_preset(const Model& source, QuantPreset preset, const ImportanceMatrix* importance, CalibrationMethod method,
                  const std::vector<std::vector<int32_t>>& calib, const std::string& path, bool allocate,
                  bool head_embed) {
  Model model = source;
  TypeSelectionOptions selection;
  selection.preset = preset;
  selection.has_importance = importance != nullptr;
  // As stage_quantize.cpp: the chosen types become per-tensor overrides. A shorter ladder than the default (an
  // i-quant, a K-quant mix either side of each preset) keeps the encodes cheap; the file still mixes families.
  const std::vector<DType> ladder = {DType::IQ1_S, DType::IQ2_XS, DType::IQ3_S, DType::Q3_K, DType::Q4_K, DType::Q5_K};
  if (allocate)
    for (const auto& spec : allocate_to_size(model, selection, *importance, calib, {2, Encoder::Fast, ladder}).overrides())
      selection.overrides.push_back(parse_type_for(spec));
  TensorQuantizer quantizer(model, selection, importance, Encoder::Fast);
  if (method != CalibrationMethod::Rtn) {
    CalibrationOptions options;
    options.method = method;
    options.progress = false;
    options.embedding_and_head = head_embed;
    quantize_calibrated(model, calib, gguf_preset_targets(model, selection), options);
    if (head_embed && model.tensor(names::kEmbedTokens).dtype() != quantizer.target(names::kEmbedTokens))
      throw_error(ErrorKind::Internal, "{}: GPTQ left the embedding as {}", path,
                  dtype_name(model.tensor(names::kEmbedTokens).dtype()));
  }
  GgufWriteOptions options;
  options.file_type = static_cast<LlamaFileType>(preset_info(preset).gguf_file_type);
  options.choose_dtype = [&](const std::string& name, const Tensor& t) {
    const DType target = quantizer.target(name);
    if (!traits(target).is_quantized) quantizer.record_conversion(t, target);
    return target;
  };
  options.encode = [&](const Tensor& t, DType dtype) { return quantizer.encode(t, dtype); };
  write_gguf(model, path, options);
}

struct Measured {
  std::string path;
  uint64_t bytes = 0;
  double write_seconds = 0;
  double slmopt_nll = 0;
  double llama_nll = 0;
  double agreement = 0;
  int64_t positions = 0;
};

struct ModelRun {
  double reference_nll = 0;  // the unquantized model, slmopt's forward pass
  std::map<std::string, Measured> cases;  // by case_name
  std::string error;
};

// Removes a scratch folder when the process ends (a few megabytes of GGUF files per model).
struct RemovedOnExit {
  std::string path;
  ~RemovedOnExit() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

// Writes every case of `model_name`, evaluates each file with slmopt, then all of them with llama.cpp in one
// harness process. Runs once per model per test process.
ModelRun run_model(const std::string& model_name) {
  static const RemovedOnExit scratch{testing::scratch_dir("gguf_presets_llama_cpp")};
  using Clock = std::chrono::steady_clock;
  const auto seconds_since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
  const auto run_start = Clock::now();
  ModelRun run;
  const Model model = load_model(testing::model_path(model_name));
  const std::vector<std::vector<int32_t>> windows = eval_windows(model);
  if (static_cast<int64_t>(windows.size()) != kWindows) {
    run.error = fmt::format("{}: {} eval windows, expected {}", model_name, windows.size(), kWindows);
    return run;
  }
  {
    const ModelRunner reference(model);
    double sum = 0;
    int64_t terms = 0;
    for (const auto& w : windows)
      for (double nll : next_token_nll(reference.logits(w), w)) sum += nll, ++terms;
    run.reference_nll = sum / static_cast<double>(terms);
  }

  double write_seconds = 0, slmopt_eval_seconds = 0, calib_seconds = 0;
  std::optional<ImportanceMatrix> importance;
  std::vector<std::vector<int32_t>> calib;
  std::vector<std::string> names, paths;            // per case, in case order
  std::vector<std::vector<int32_t>> slmopt_argmax;  // per case, all positions in window order
  for (const PresetCase& c : all_cases()) {
    if (c.model != model_name) continue;
    if ((c.calib || c.method != CalibrationMethod::Rtn) && calib.empty()) {
      const Tokenizer tokenizer(model.vocab);
      const auto corpus = tokenize_file(tokenizer, testing::data_path(calib_text(model_name)));
      calib = sample_calibration_windows(corpus, kCalibSamples, kCalibSeqlen, /*seed=*/0, bos_of(model));
    }
    if (c.calib && !importance) {
      const auto t = Clock::now();
      importance = collect_importance(ModelRunner(model), calib);
      calib_seconds = seconds_since(t);
    }
    Measured m;
    m.path = scratch.path + "/" + case_name(c) + ".gguf";
    const auto start = Clock::now();
    write_preset(model, c.preset, c.calib ? &*importance : nullptr, c.method, calib, m.path, c.allocate,
                c.head_embed);
    m.write_seconds = seconds_since(start);
    write_seconds += m.write_seconds;
    m.bytes = std::filesystem::file_size(m.path);

    const auto eval_start = Clock::now();
    const Model written = load_gguf(m.path);
    const ModelRunner runner(written);
    double sum = 0;
    int64_t terms = 0;
    std::vector<int32_t> tops;
    for (const auto& w : windows) {
      const RowMatrix logits = runner.logits(w);
      for (double nll : next_token_nll(logits, w)) sum += nll, ++terms;
      for (int64_t i = 0; i < logits.rows(); ++i)
        tops.push_back(argmax({logits.data() + i * logits.cols(), static_cast<size_t>(logits.cols())}));
    }
    m.slmopt_nll = sum / static_cast<double>(terms);
    slmopt_eval_seconds += seconds_since(eval_start);
    names.push_back(case_name(c));
    paths.push_back(m.path);
    slmopt_argmax.push_back(std::move(tops));
    run.cases[case_name(c)] = m;
  }

  const std::string ids = scratch.path + "/" + model_name + "-windows.json";
  std::ofstream(ids) << nlohmann::json(windows).dump();
  const std::string logits_dir = scratch.path + "/" + model_name + "-logits";
  std::filesystem::create_directories(logits_dir);
  std::vector<std::string> args = {"eval-many", ids, logits_dir};
  args.insert(args.end(), paths.begin(), paths.end());
  const auto harness_start = Clock::now();
  const auto result = nlohmann::json::parse(testing::run_node_script(kHarness, args));
  std::cout << fmt::format("[ llama.cpp ] {}: {} files written in {:.1f} s (importance matrix {:.1f} s), evaluated by "
                           "slmopt in {:.1f} s and by llama.cpp in {:.1f} s; {:.1f} s in all\n",
                           model_name, paths.size(), write_seconds, calib_seconds, slmopt_eval_seconds,
                           seconds_since(harness_start), seconds_since(run_start));
  const auto& models = result.at("models");
  if (models.size() != paths.size()) {
    run.error = fmt::format("harness returned {} results for {} files", models.size(), paths.size());
    return run;
  }
  for (size_t j = 0; j < names.size(); ++j) {
    Measured& m = run.cases.at(names[j]);
    const auto& r = models[j];
    m.llama_nll = r.at("mean_nll").get<double>();
    const auto theirs = r.at("argmax").get<std::vector<int32_t>>();
    const auto& ours = slmopt_argmax[j];
    int64_t agree = 0;
    for (size_t i = 0; i < ours.size() && i < theirs.size(); ++i) agree += ours[i] == theirs[i];
    m.positions = static_cast<int64_t>(ours.size());
    m.agreement = theirs.size() == ours.size() ? static_cast<double>(agree) / static_cast<double>(ours.size()) : 0;
    std::filesystem::remove(m.path);
  }
  std::filesystem::remove_all(logits_dir);
  return run;
}

const ModelRun& model_run(const std::string& model_name) {
  static std::mutex mutex;
  static std::map<std::string, ModelRun> runs;
  std::lock_guard lock(mutex);
  auto it = runs.find(model_name);
  if (it == runs.end()) it = runs.emplace(model_name, run_model(model_name)).first;
  return it->second;
}

class LlamaCppPresets : public ::testing::TestWithParam<PresetCase> {};

TEST_P(LlamaCppPresets, NllWithinOnePercentOfSlmoptsOnTheSameFile) {
  SLMOPT_REQUIRE_CONSUMER("node-llama-cpp");
  SLMOPT_REQUIRE_CONSUMER("@node-llama-cpp/linux-x64");
  const PresetCase c = GetParam();
  const ModelRun& run = model_run(c.model);
  ASSERT_TRUE(run.error.empty()) << run.error;
  const Measured& m = run.cases.at(case_name(c));
  const double rel = std::abs(m.slmopt_nll - m.llama_nll) / m.llama_nll;
  std::cout << fmt::format("[ llama.cpp ] {:30s} {:>9} bytes, written in {:.2f} s; mean NLL slmopt {:.5f} llama.cpp "
                           "{:.5f} (rel. diff {:.2e}; unquantized {:.5f}); argmax agreement {:.2f} % of {}\n",
                           case_name(c), m.bytes, m.write_seconds, m.slmopt_nll, m.llama_nll, rel, run.reference_nll,
                           100 * m.agreement, m.positions);
  RecordProperty("file_bytes", std::to_string(m.bytes));
  RecordProperty("slmopt_mean_nll", fmt::format("{:.6f}", m.slmopt_nll));
  RecordProperty("llama_cpp_mean_nll", fmt::format("{:.6f}", m.llama_nll));
  RecordProperty("argmax_agreement", fmt::format("{:.6f}", m.agreement));
  EXPECT_GT(m.positions, 0);
  EXPECT_LE(rel, kMaxNllRelDiff);
  EXPECT_GE(m.agreement, kMinArgmaxAgreement);
  if (c.allocate) {  // within the budget: no larger than the preset's own file (RTN + imatrix, the same types as llama.cpp's)
    PresetCase plain = c;
    plain.allocate = false;
    plain.method = CalibrationMethod::Rtn;
    EXPECT_LE(m.bytes, run.cases.at(case_name(plain)).bytes);
  }
}

INSTANTIATE_TEST_SUITE_P(Presets, LlamaCppPresets, ::testing::ValuesIn(all_cases()),
                         [](const auto& param_info) { return case_name(param_info.param); });

}  // namespace
}  // namespace slmopt
