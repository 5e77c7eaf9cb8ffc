// GPTQ's arithmetic against this machine's F32 matrix-product peak, measured in the same run (issue 10): the
// peak is the best rate of exec/gemm.h's kernel on square products over the thread pool; then, on the linears
// of the 1B shape (hidden 2048, FFN 5632) with the Q4_K grid of its Q4_K_M preset, the Hessian products
// (InputStatistics::add on windows of 512 rows), the factorisation (once per distinct input, as calibration
// shares it) and the sweeps. Prints GFLOP/s and the share of peak for each and for the solver as a whole
// (factorisations + sweeps). Not a test, not in CI.
//
// Usage: gptq_solver_study [threads] [windows]   (defaults: 2 threads, 4 windows of 512 rows per input)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "slmopt/core/parallel.h"
#include "slmopt/exec/gemm.h"
#include "slmopt/quant/gguf_grid.h"
#include "slmopt/quant/gptq.h"
#include "slmopt/quant/input_statistics.h"

using namespace slmopt;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double gemm_peak() {
  double best = 0;
  for (int64_t n : {1024, 2048}) {
    std::vector<float> a(static_cast<size_t>(n * n), 0.5f), b(a), c(a.size(), 0.0f);
    for (int rep = 0; rep < 3; ++rep) {
      const auto t = Clock::now();
      gemm_accumulate_parallel({n, n, n, a.data(), n, 1, b.data(), n, c.data(), n});
      best = std::max(best, 2.0 * static_cast<double>(n) * n * n / since(t) / 1e9);
    }
  }
  return best;
}

RowMatrix random_inputs(int64_t rows, int64_t cols, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  RowMatrix x(rows, cols);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) x(i, j) = normal(rng) * (1.0f + 2.0f * static_cast<float>(j % 5 == 0));
  return x;
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const int windows = argc > 2 ? std::atoi(argv[2]) : 4;
  set_thread_count(threads);
  std::printf("# GPTQ solver vs F32 GEMM peak (%d threads, kernel %s)\n\n", threads, gemm_kernel_name());
  const double peak = gemm_peak();
  std::printf("F32 GEMM peak (exec/gemm.h, square 1024/2048, best of 3): %.1f GFLOP/s\n\n", peak);

  struct Input {
    const char* name;
    int64_t cols;
    std::vector<std::pair<const char*, int64_t>> linears;  // name, rows
  };
  const std::vector<Input> inputs = {{"attn in", 2048, {{"q_proj", 2048}, {"k_proj", 256}, {"v_proj", 256}}},
                                     {"attn out", 2048, {{"o_proj", 2048}}},
                                     {"mlp in", 2048, {{"gate_proj", 5632}, {"up_proj", 5632}}},
                                     {"mlp mid", 5632, {{"down_proj", 2048}}}};
  std::mt19937 rng(1);
  double h_flops = 0, h_s = 0, f_flops = 0, f_s = 0, s_flops = 0, s_s = 0;
  std::printf("| input | step | shape | seconds | GFLOP/s | share of peak |\n|---|---|---|---|---|---|\n");
  for (const Input& in : inputs) {
    const RowMatrix x = random_inputs(512, in.cols, rng);
    InputStatistics stats(in.cols);
    auto t = Clock::now();
    for (int w = 0; w < windows; ++w) stats.add(x);
    double s = since(t), fl = static_cast<double>(windows) * 512.0 * in.cols * in.cols;  // upper triangle only
    h_flops += fl, h_s += s;
    std::printf("| %s | XᵀX | %d × 512 × %lld | %.2f | %.1f | %.0f %% |\n", in.name, windows,
                static_cast<long long>(in.cols), s, fl / s / 1e9, 100 * fl / s / 1e9 / peak);
    const Eigen::MatrixXd h = stats.hessian();
    GptqOptions options;
    const GptqFactor factor = gptq_factor(h, options, in.name);
    f_flops += factor.flops, f_s += factor.seconds;
    std::printf("| %s | factor | %lld² | %.2f | %.1f | %.0f %% |\n", in.name, static_cast<long long>(in.cols),
                factor.seconds, factor.flops / factor.seconds / 1e9, 100 * factor.flops / factor.seconds / 1e9 / peak);
    for (const auto& [name, rows] : in.linears) {
      std::normal_distribution<float> normal(0.0f, 0.02f);
      std::vector<float> w(static_cast<size_t>(rows * in.cols));
      for (float& v : w) v = normal(rng);
      const std::vector<float> importance(static_cast<size_t>(in.cols), 1.0f);
      GgufWeightGrid grid(w, rows, in.cols, DType::Q4_K, importance.data(), name);
      GptqStats st;
      gptq_quantize(w, factor, grid, options, &st, name);
      s_flops += st.flops, s_s += st.seconds;
      std::printf("| %s | sweep %s | %lld × %lld | %.2f | %.1f | %.0f %% |\n", in.name, name,
                  static_cast<long long>(rows), static_cast<long long>(in.cols), st.seconds, st.flops / st.seconds / 1e9,
                  100 * st.flops / st.seconds / 1e9 / peak);
    }
  }
  const double solver = (f_flops + s_flops) / (f_s + s_s) / 1e9;
  std::printf("\nPer block of the 1B shape: Hessians %.2f s (%.1f GFLOP/s, %.0f %% of peak), factorisations %.2f s "
              "(%.1f GFLOP/s), sweeps %.2f s (%.1f GFLOP/s).\n",
              h_s, h_flops / h_s / 1e9, 100 * h_flops / h_s / 1e9 / peak, f_s, f_flops / f_s / 1e9, s_s,
              s_flops / s_s / 1e9);
  std::printf("GPTQ solver (factorisations + sweeps): %.1f GFLOP/s = %.0f %% of the %.1f GFLOP/s F32 GEMM peak.\n",
              solver, 100 * solver / peak, peak);
  return 0;
}
