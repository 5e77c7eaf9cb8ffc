// Throughput of linear_stored on a 1B model's matrices (TinyLlama's shape: hidden 2048, FFN 5632, 4 KV heads
// of 64, vocab 32000) per stored type, for a 512-token prompt and a single decoded token, on 1 and 2 threads;
// plus this machine's F32 peak for scale: an FMA loop that never touches memory, and Eigen's F32 GEMM.
// Not part of ctest. Typical use:
//   build/tests/stored_linear_bench --benchmark_filter='Linear/.*/512/' --benchmark_min_time=0.5
//   SLMOPT_KERNEL=avx2 build/tests/stored_linear_bench ...   (force a kernel set; default: the best one)
// Counters: GFLOP/s = 2·T·out·in per CPU second of the whole process (decoding time included): on a shared,
// loaded machine CPU time is steadier than wall time; on a quiet one, GFLOP/s × threads ≈ wall-clock rate
// when the threads scale (compare the Time and CPU columns).
#include <benchmark/benchmark.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "slmopt/core/parallel.h"
#include "slmopt/exec/cpu_features.h"
#include "slmopt/exec/stored_linear.h"
#include "slmopt/quant/block_quantize.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace slmopt {
namespace {

struct Shape {
  const char* name;
  int64_t out, in;
};
constexpr Shape kShapes[] = {
    {"attn_q", 2048, 2048}, {"attn_kv", 256, 2048}, {"ffn_up", 5632, 2048}, {"ffn_down", 2048, 5632},
    {"lm_head", 32000, 2048},
};
constexpr DType kTypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_K, DType::Q6_K};

const Tensor& weight(DType dtype, int shape) {
  static std::map<std::pair<DType, int>, Tensor> cache;
  auto& slot = cache[{dtype, shape}];
  if (slot.empty()) {
    const Shape& s = kShapes[shape];
    std::vector<float> values(static_cast<size_t>(s.out * s.in));
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 0.02f);
    for (float& v : values) v = normal(rng);
    Tensor f32 = Tensor::from_f32(s.name, {s.out, s.in}, values);
    if (dtype == DType::F32)
      slot = std::move(f32);
    else if (dtype == DType::F16 || dtype == DType::BF16)
      slot = Tensor::from_f32_as(s.name, {s.out, s.in}, values, dtype);
    else
      slot = quantize_tensor(f32, dtype, nullptr, Encoder::Reference);
  }
  return slot;
}

// Args: dtype index, shape index, tokens, threads.
void BM_Linear(benchmark::State& state) {
  const DType dtype = kTypes[state.range(0)];
  const int shape = static_cast<int>(state.range(1));
  const int64_t tokens = state.range(2);
  set_thread_count(static_cast<int>(state.range(3)));
  const Tensor& w = weight(dtype, shape);
  RowMatrix x = RowMatrix::Random(tokens, kShapes[shape].in);
  RowMatrix y;
  for (auto _ : state) {
    linear_stored(x, w, nullptr, y);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetLabel(std::string(dtype_name(dtype)) + " " + kShapes[shape].name + " " +
                 std::string(kernel_isa_name(kernel_isa())));
  state.counters["GFLOP/s"] = benchmark::Counter(
      2e-9 * static_cast<double>(tokens * kShapes[shape].out * kShapes[shape].in),
      benchmark::Counter::kIsIterationInvariantRate);
  set_thread_count(0);
}

void linear_args(benchmark::internal::Benchmark* b) {
  for (int dtype = 0; dtype < static_cast<int>(std::size(kTypes)); ++dtype)
    for (int shape = 0; shape < static_cast<int>(std::size(kShapes)); ++shape)
      for (const int64_t tokens : {512, 1})
        for (const int64_t threads : {1, 2}) b->Args({dtype, shape, tokens, threads});
}
BENCHMARK(BM_Linear)->Name("Linear")->Apply(linear_args)->ArgNames({"type", "shape", "T", "threads"})
    ->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime();

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// Peak F32 FMA rate of one core: 16 independent accumulator chains (enough to cover the FMA latency on two
// pipes) and no memory traffic. 2·16·16 flops per iteration of the inner loop.
__attribute__((target("avx512f"), noipa)) float fma_peak_avx512(int64_t iterations) {
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-3f);
  for (int64_t it = 0; it < iterations; ++it)
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  __m512 sum = acc[0];
  for (int i = 1; i < 16; ++i) sum = _mm512_add_ps(sum, acc[i]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, sum);
  return lanes[0] + lanes[15];
}

void BM_FmaPeak(benchmark::State& state) {
  if (!kernel_isa_supported(KernelIsa::Avx512)) {
    state.SkipWithError("no AVX-512");
    return;
  }
  const int64_t iterations = 1 << 20;
  for (auto _ : state) benchmark::DoNotOptimize(fma_peak_avx512(iterations));
  state.counters["GFLOP/s"] = benchmark::Counter(2e-9 * 16 * 16 * static_cast<double>(iterations),
                                                 benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_FmaPeak)->Name("FmaPeakAvx512OneCore")->Unit(benchmark::kMillisecond);
#endif

// Eigen's F32 GEMM (as built here, AVX2 + FMA, one thread): the attn_q product at T=512.
void BM_EigenGemm(benchmark::State& state) {
  const RowMatrix x = RowMatrix::Random(512, 2048), w = RowMatrix::Random(2048, 2048);
  RowMatrix y(512, 2048);
  for (auto _ : state) {
    y.noalias() = x * w.transpose();
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2e-9 * 512.0 * 2048 * 2048, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_EigenGemm)->Name("EigenGemmF32OneThread")->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace slmopt

BENCHMARK_MAIN();
