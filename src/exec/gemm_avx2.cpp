// AVX2 (+FMA) kernel of exec/gemm.h, for CPUs without AVX-512: C tiles of 6 rows × 16 columns held in 12 ymm
// accumulators; per k two vectors of B and six broadcasts of A feed 12 fused multiply-adds (15 of the 16
// registers), the register tile BLIS and OpenBLAS use on Haswell-class cores. k runs in blocks of 256 so the
// 16-column strip of B (16 KiB) stays in L1 while every 6-row group passes over it; between k blocks C is
// stored and reloaded, which leaves each element's fma chain unchanged, so the result is the portable kernel's
// bit for bit. Column tails use masked loads and stores; row tails a smaller register tile.
#include "gemm_kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <algorithm>

#include "simd_target.h"

namespace slmopt::gemm_kernels {
// The ISA in the namespace name: code here runs only after exec/cpu_features found these instructions, and
// tests/integration/baseline_isa_test.sh allows AVX instructions only in functions so named.
namespace simd_avx2 {
namespace {

constexpr int64_t kKBlock = 256;
constexpr int kRows = 6;

// Lanes l < count of one 8-lane vector (count clamped to 0..8).
SLMOPT_AVX2 inline __m256i lane_mask(int64_t count) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(std::clamp<int64_t>(count, 0, 8))), lane);
}

// C[MR rows][2 vectors] += A·B over k in [0, K); m0/m1 select the live columns of the two 8-column vectors.
// Masked-off lanes load as 0 and are never stored, so they cannot touch memory past the tile.
template <int MR>
SLMOPT_AVX2 void tile(const float* a, int64_t a_row, int64_t a_col, const float* b, int64_t ldb, float* c,
                      int64_t ldc, int64_t K, __m256i m0, __m256i m1) {
  __m256 acc0[MR], acc1[MR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    acc0[i] = _mm256_maskload_ps(c + i * ldc, m0);
    acc1[i] = _mm256_maskload_ps(c + i * ldc + 8, m1);
  }
  for (int64_t k = 0; k < K; ++k) {
    const __m256 b0 = _mm256_maskload_ps(b + k * ldb, m0);
    const __m256 b1 = _mm256_maskload_ps(b + k * ldb + 8, m1);
    const float* ak = a + k * a_col;
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m256 av = _mm256_broadcast_ss(ak + i * a_row);
      acc0[i] = _mm256_fmadd_ps(av, b0, acc0[i]);
      acc1[i] = _mm256_fmadd_ps(av, b1, acc1[i]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    _mm256_maskstore_ps(c + i * ldc, m0, acc0[i]);
    _mm256_maskstore_ps(c + i * ldc + 8, m1, acc1[i]);
  }
}

using TileFn = void (*)(const float*, int64_t, int64_t, const float*, int64_t, float*, int64_t, int64_t, __m256i,
                        __m256i);
constexpr TileFn kTiles[kRows] = {tile<1>, tile<2>, tile<3>, tile<4>, tile<5>, tile<6>};

SLMOPT_AVX2 void gemm(const GemmArgs& g) {
  for (int64_t k0 = 0; k0 < g.k; k0 += kKBlock) {
    const int64_t kb = std::min(kKBlock, g.k - k0);
    for (int64_t j0 = 0; j0 < g.n; j0 += 16) {
      const int64_t w = std::min<int64_t>(16, g.n - j0);
      const __m256i m0 = lane_mask(w), m1 = lane_mask(w - 8);
      for (int64_t i0 = 0; i0 < g.m; i0 += kRows) {
        const int64_t mr = std::min<int64_t>(kRows, g.m - i0);
        kTiles[mr - 1](g.a + i0 * g.a_row + k0 * g.a_col, g.a_row, g.a_col, g.b + k0 * g.ldb + j0, g.ldb,
                       g.c + i0 * g.ldc + j0, g.ldc, kb, m0, m1);
      }
    }
  }
}

}  // namespace
}  // namespace simd_avx2

GemmFn avx2_gemm() { return simd_avx2::gemm; }

}  // namespace slmopt::gemm_kernels

#else

namespace slmopt::gemm_kernels {
GemmFn avx2_gemm() { return nullptr; }
}  // namespace slmopt::gemm_kernels

#endif
