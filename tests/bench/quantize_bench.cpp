// Quantization throughput (MB of f32 input per second, one thread) per block type: slmopt's default (fast)
// encoder, its exhaustive search,
// slmopt's llama-compatible encoder, and llama.cpp's ggml_quantize_chunk (node-llama-cpp's libggml-base.so,
// through the unit tests' dlopen wrapper) on the same rows, with and without an importance vector.
//   build with -DSLMOPT_BUILD_BENCH=ON; run ./build/tests/quantize_bench [--benchmark_filter=q4_k]
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "ggml_reference.h"
#include "slmopt/quant/block_quantize.h"

namespace {

using slmopt::DType;

constexpr int64_t kRows = 64, kCols = 4096;

const std::vector<float>& weights() {
  static const std::vector<float> w = [] {
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 0.02f);
    std::uniform_real_distribution<float> unit(0.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(kRows * kCols));
    for (auto& v : x) v = unit(rng) < 0.01f ? 6 * normal(rng) : normal(rng);
    return x;
  }();
  return w;
}

const std::vector<float>& importance() {
  static const std::vector<float> imp = [] {
    std::mt19937 rng(8);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> v(static_cast<size_t>(kCols));
    for (auto& x : v) x = std::exp(1.2f * normal(rng));
    return v;
  }();
  return imp;
}

enum class Impl { SlmoptFast, SlmoptSearch, SlmoptLlama, Ggml };

void run(benchmark::State& state, DType dtype, Impl impl, bool with_importance) {
  if (impl == Impl::Ggml && !slmopt::testing::llama_cpp_unavailable_reason().empty()) {
    state.SkipWithError(slmopt::testing::llama_cpp_unavailable_reason().c_str());
    return;
  }
  const auto& x = weights();
  const float* imp = with_importance ? importance().data() : nullptr;
  const size_t rb = slmopt::row_bytes(dtype, kCols);
  std::vector<uint8_t> out(rb * kRows);
  for (auto _ : state) {
    if (impl == Impl::Ggml) {
      slmopt::testing::GgmlLibrary::get().quantize_chunk(dtype, x.data(), out.data(), kRows, kCols, imp);
    } else {
      const auto encoder = impl == Impl::SlmoptFast     ? slmopt::Encoder::Fast
                           : impl == Impl::SlmoptSearch ? slmopt::Encoder::Search
                                                        : slmopt::Encoder::Llama;
      for (int64_t r = 0; r < kRows; ++r)
        slmopt::quantize_row(encoder, dtype, x.data() + r * kCols, out.data() + r * rb, kCols, imp);
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * kRows * kCols * static_cast<int64_t>(sizeof(float)));
}

const int registered = [] {
  for (const DType dtype : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q2_K,
                            DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_NL}) {
    for (const bool imp : {false, true}) {
      const std::string suffix = std::string(slmopt::dtype_name(dtype)) + (imp ? "/importance" : "/plain");
      benchmark::RegisterBenchmark(("slmopt_fast/" + suffix).c_str(), run, dtype, Impl::SlmoptFast, imp)
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("slmopt_search/" + suffix).c_str(), run, dtype, Impl::SlmoptSearch, imp)
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("slmopt_llama/" + suffix).c_str(), run, dtype, Impl::SlmoptLlama, imp)
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("ggml_chunk/" + suffix).c_str(), run, dtype, Impl::Ggml, imp)
          ->Unit(benchmark::kMillisecond);
    }
  }
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
