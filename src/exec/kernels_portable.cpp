// The portable kernel set: plain C++ with std::fma, following linear_kernels.h's summation order exactly, so
// it is both the fallback on CPUs without AVX2 and the reference twin the SIMD sets are tested against.
#include <algorithm>
#include <cmath>

#include "linear_kernels.h"

namespace slmopt::linear_kernels {
namespace {

constexpr int kLanes = 16;
constexpr int kRegRows = 4;  // tokens per register tile
constexpr int kRegCols = 4;  // weight rows per register tile

// One register tile of up to kRegRows × kRegCols outputs.
void portable_tile(const float* x, int64_t ldx, int mr, const float* w, int64_t ldw, int nr, int64_t K,
                   bool accumulate, const float* bias, float* y, int64_t ldy) {
  float acc[kRegRows][kRegCols][kLanes] = {};
  for (int64_t k0 = 0; k0 < K; k0 += kLanes) {
    const int lanes = static_cast<int>(std::min<int64_t>(kLanes, K - k0));
    for (int i = 0; i < mr; ++i)
      for (int j = 0; j < nr; ++j) {
        const float* xr = x + i * ldx + k0;
        const float* wr = w + j * ldw + k0;
        for (int l = 0; l < lanes; ++l) acc[i][j][l] = std::fma(xr[l], wr[l], acc[i][j][l]);
      }
  }
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < nr; ++j) {
      const float sum = fold16(acc[i][j]);
      const float total = accumulate ? y[i * ldy + j] + sum : sum;
      y[i * ldy + j] = bias ? total + bias[j] : total;
    }
}

void portable_dot_tile(const float* x, int64_t ldx, int64_t T, const float* w, int64_t ldw, int64_t N, int64_t K,
                       bool accumulate, const float* bias, float* y, int64_t ldy) {
  for (int64_t t0 = 0; t0 < T; t0 += kRegRows)
    for (int64_t n0 = 0; n0 < N; n0 += kRegCols)
      portable_tile(x + t0 * ldx, ldx, static_cast<int>(std::min<int64_t>(kRegRows, T - t0)), w + n0 * ldw, ldw,
                    static_cast<int>(std::min<int64_t>(kRegCols, N - n0)), K, accumulate, bias ? bias + n0 : nullptr,
                    y + t0 * ldy + n0, ldy);
}

bool no_fast_decoder(DType, const uint8_t*, size_t, int64_t, int64_t, float*) { return false; }

}  // namespace

const KernelSet& portable_set() {
  static const KernelSet set{portable_dot_tile, no_fast_decoder, kRegCols};
  return set;
}

}  // namespace slmopt::linear_kernels
