// Load time of the bundled models through load_model (config + safetensors mapping + tokenizer + validation).
// Loading maps the weights without copying them, so the figure is dominated by JSON parsing (header, config,
// tokenizer) and should stay in the low milliseconds regardless of weight size. Run:
//   ./build/tests/load_bench --benchmark_repetitions=10 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "slmopt/core/mapped_file.h"
#include "slmopt/io/hf_tokenizer.h"
#include "slmopt/io/model_loader.h"
#include "slmopt/io/safetensors.h"
#include "slmopt/text/tokenizer.h"

namespace {

std::string model_dir(const char* name) {
  const char* env = std::getenv("SLMOPT_SOURCE_DIR");
  return std::string(env ? env : SLMOPT_SOURCE_DIR) + "/models/" + name;
}

void BM_LoadModel(benchmark::State& state, const char* name) {
  const std::string dir = model_dir(name);
  int64_t bytes = 0;
  for (auto _ : state) {
    const slmopt::Model model = slmopt::load_model(dir);
    bytes = static_cast<int64_t>(model.total_bytes());
    benchmark::DoNotOptimize(bytes);
  }
  state.counters["weight_MB"] = static_cast<double>(bytes) / 1e6;
}

BENCHMARK_CAPTURE(BM_LoadModel, tinystories_656k, "tinystories-656k")
    ->Unit(benchmark::kMillisecond)
    ->Repetitions(10)
    ->ReportAggregatesOnly(true);
BENCHMARK_CAPTURE(BM_LoadModel, llama_5m_kjv, "llama-5m-kjv")
    ->Unit(benchmark::kMillisecond)
    ->Repetitions(10)
    ->ReportAggregatesOnly(true);

// The parts, to see where load time goes: the safetensors header alone, and the tokenizer files alone.
void BM_OpenSafetensors(benchmark::State& state, const char* name) {
  const std::string path = model_dir(name) + "/model.safetensors";
  for (auto _ : state) benchmark::DoNotOptimize(slmopt::SafetensorsFile::open(path).tensors().size());
}

void BM_LoadTokenizer(benchmark::State& state, const char* name) {
  const std::string dir = model_dir(name);
  for (auto _ : state)
    benchmark::DoNotOptimize(slmopt::load_hf_vocab(dir + "/tokenizer.json", dir + "/tokenizer_config.json").size());
}

std::string source_root() {
  const char* env = std::getenv("SLMOPT_SOURCE_DIR");
  return env ? env : SLMOPT_SOURCE_DIR;
}

// The folder of a family tokenizer, or "" after marking the benchmark skipped when its tokenizer.json is absent
// (Gemma 3's lives in ../shared/, which a fresh clone may not have beside it).
std::string family_tokenizer_dir(benchmark::State& state, const char* relative_dir) {
  const std::string dir = source_root() + "/" + relative_dir;
  if (std::filesystem::exists(dir + "/tokenizer.json")) return dir;
  state.SkipWithError((dir + "/tokenizer.json is missing (../shared/ is not beside this checkout)").c_str());
  return "";
}

// Tokenizers of the families people ship, at their real size: SmolLM's (49k tokens, 2.1 MB, bundled in
// models/tokenizers/) and Gemma 3's (262k tokens, 32 MB; from ../shared/tokenizers/, skipped without it). Loading
// them is mostly parsing tokenizer.json.
void BM_LoadFamilyTokenizer(benchmark::State& state, const char* relative_dir) {
  const std::string dir = family_tokenizer_dir(state, relative_dir);
  if (dir.empty()) return;
  const std::string config = std::filesystem::exists(dir + "/tokenizer_config.json") ? dir + "/tokenizer_config.json" : "";
  for (auto _ : state) benchmark::DoNotOptimize(slmopt::load_hf_vocab(dir + "/tokenizer.json", config).size());
}

BENCHMARK_CAPTURE(BM_LoadFamilyTokenizer, smollm_49k, "models/tokenizers/smollm")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_LoadFamilyTokenizer, gemma3_262k, "../shared/tokenizers/gemma3")->Unit(benchmark::kMillisecond);

// What a command that tokenizes text pays after loading: building the encoder (token and merge tables) from the
// vocabulary.
void BM_BuildFamilyTokenizer(benchmark::State& state, const char* relative_dir) {
  const std::string dir = family_tokenizer_dir(state, relative_dir);
  if (dir.empty()) return;
  const slmopt::Vocab vocab = slmopt::load_hf_vocab(dir + "/tokenizer.json", "");
  for (auto _ : state) benchmark::DoNotOptimize(slmopt::Tokenizer(vocab).vocab_size());
}

BENCHMARK_CAPTURE(BM_BuildFamilyTokenizer, smollm_49k, "models/tokenizers/smollm")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_BuildFamilyTokenizer, gemma3_262k, "../shared/tokenizers/gemma3")->Unit(benchmark::kMillisecond);

// Encoding the bundled held-out KJV text (164 kB) with a family's tokenizer: a merge lookup per step of every
// word not seen before in the text. Counter: bytes per second.
void BM_EncodeWithFamilyTokenizer(benchmark::State& state, const char* relative_dir) {
  const std::string dir = family_tokenizer_dir(state, relative_dir);
  if (dir.empty()) return;
  const slmopt::Tokenizer tokenizer(slmopt::load_hf_vocab(dir + "/tokenizer.json", ""));
  const std::string text = slmopt::read_text_file(source_root() + "/models/data/kjv-eval.txt");
  for (auto _ : state) benchmark::DoNotOptimize(tokenizer.encode(text).size());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(text.size()));
}

BENCHMARK_CAPTURE(BM_EncodeWithFamilyTokenizer, smollm_49k, "models/tokenizers/smollm")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_EncodeWithFamilyTokenizer, gemma3_262k, "../shared/tokenizers/gemma3")
    ->Unit(benchmark::kMillisecond);

BENCHMARK_CAPTURE(BM_OpenSafetensors, tinystories_656k, "tinystories-656k")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_OpenSafetensors, llama_5m_kjv, "llama-5m-kjv")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_LoadTokenizer, tinystories_656k, "tinystories-656k")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_LoadTokenizer, llama_5m_kjv, "llama-5m-kjv")->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
