// Load time of the bundled models through load_model (config + safetensors mapping + tokenizer + validation).
// Loading maps the weights without copying them, so the figure is dominated by JSON parsing (header, config,
// tokenizer) and should stay in the low milliseconds regardless of weight size. Run:
//   ./build/tests/load_bench --benchmark_repetitions=10 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

#include "slmopt/io/hf_tokenizer.h"
#include "slmopt/io/model_loader.h"
#include "slmopt/io/safetensors.h"

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

BENCHMARK_CAPTURE(BM_OpenSafetensors, tinystories_656k, "tinystories-656k")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_OpenSafetensors, llama_5m_kjv, "llama-5m-kjv")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_LoadTokenizer, tinystories_656k, "tinystories-656k")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_LoadTokenizer, llama_5m_kjv, "llama-5m-kjv")->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
