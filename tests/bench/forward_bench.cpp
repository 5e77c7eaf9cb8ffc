// Forward-pass throughput in tokens per second at context 256, for 1 and 2 threads (the benchmark argument):
// one window, a batch of windows, and token-by-token decoding with a KV cache, on the bundled models
// (llama-5m-kjv: hidden 256, FFN 768, 4 layers, 4 heads / 2 KV heads of 64, vocab 4096, BF16 weights decoded to
// float; tinystories-656k: hidden 128, FFN 384, 2 layers, 8 heads / 4 KV heads of 16, vocab 2048, tied).
// Token ids are random: throughput does not depend on them.
#include <benchmark/benchmark.h>

#include <vector>

#include "../unit/synthetic_llama.h"
#include "slmopt/core/parallel.h"
#include "slmopt/exec/model_runner.h"
#include "slmopt/io/model_loader.h"

namespace slmopt {
namespace {

constexpr int64_t kContext = 256;

const ModelRunner& kjv_runner() {
  static const ModelRunner runner(load_model(SLMOPT_SOURCE_DIR "/models/llama-5m-kjv"));
  return runner;
}

const ModelRunner& tinystories_runner() {
  static const ModelRunner runner(load_model(SLMOPT_SOURCE_DIR "/models/tinystories-656k"));
  return runner;
}

void report_tokens(benchmark::State& state, int64_t tokens_per_iteration) {
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(tokens_per_iteration), benchmark::Counter::kIsIterationInvariantRate);
}

void window(benchmark::State& state, const ModelRunner& runner) {
  set_thread_count(static_cast<int>(state.range(0)));
  const auto tokens = testing::random_tokens(kContext, runner.vocab_size(), 3);
  for (auto _ : state) benchmark::DoNotOptimize(runner.logits(tokens).data());
  report_tokens(state, kContext);
}

void batch(benchmark::State& state, const ModelRunner& runner) {
  set_thread_count(static_cast<int>(state.range(0)));
  std::vector<std::vector<int32_t>> windows;
  for (uint32_t w = 0; w < 8; ++w) windows.push_back(testing::random_tokens(kContext, runner.vocab_size(), 10 + w));
  for (auto _ : state) benchmark::DoNotOptimize(runner.logits_batch(windows).size());
  report_tokens(state, kContext * static_cast<int64_t>(windows.size()));
}

void decode(benchmark::State& state, const ModelRunner& runner) {
  set_thread_count(static_cast<int>(state.range(0)));
  const auto tokens = testing::random_tokens(kContext, runner.vocab_size(), 4);
  for (auto _ : state) {
    KvCache cache = runner.make_cache(kContext);
    for (int32_t t : tokens) benchmark::DoNotOptimize(runner.decode(cache, std::span(&t, 1)).data());
  }
  report_tokens(state, kContext);
}

void BM_KjvWindow(benchmark::State& state) { window(state, kjv_runner()); }
void BM_KjvBatch8(benchmark::State& state) { batch(state, kjv_runner()); }
void BM_KjvDecode(benchmark::State& state) { decode(state, kjv_runner()); }
void BM_TinyStoriesWindow(benchmark::State& state) { window(state, tinystories_runner()); }
void BM_TinyStoriesBatch8(benchmark::State& state) { batch(state, tinystories_runner()); }

BENCHMARK(BM_KjvWindow)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_KjvBatch8)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_KjvDecode)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_TinyStoriesWindow)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_TinyStoriesBatch8)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace slmopt

BENCHMARK_MAIN();
