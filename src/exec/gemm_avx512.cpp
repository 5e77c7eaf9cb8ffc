// AVX-512 kernel of exec/gemm.h: C tiles of 8 rows × 32 columns held in 16 zmm accumulators; per k two vectors
// of B and eight broadcasts of A feed 16 fused multiply-adds, so the FMA units set the pace. k runs in blocks of
// 256 so the 32-column strip of B (32 KiB) stays in L1 while every 8-row group of the tile passes over it;
// between k blocks C is stored and reloaded, which leaves each element's fma chain unchanged. Column tails use
// masked loads and stores; row tails a smaller register tile.
#include "gemm_kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <algorithm>

#include "simd_target.h"

namespace slmopt::gemm_kernels {
// The ISA in the namespace name: code here runs only after exec/cpu_features found these instructions, and
// tests/integration/baseline_isa_test.sh allows AVX instructions only in functions so named.
namespace simd_avx512 {
namespace {

constexpr int64_t kKBlock = 256;

// C[MR rows][2 vectors] += A·B over k in [0, K); masks for the two 16-column vectors.
template <int MR>
SLMOPT_AVX512 void tile(const float* a, int64_t a_row, int64_t a_col, const float* b, int64_t ldb, float* c,
                        int64_t ldc, int64_t K, __mmask16 m0, __mmask16 m1) {
  __m512 acc0[MR], acc1[MR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    acc0[i] = _mm512_maskz_loadu_ps(m0, c + i * ldc);
    acc1[i] = _mm512_maskz_loadu_ps(m1, c + i * ldc + 16);
  }
  for (int64_t k = 0; k < K; ++k) {
    const __m512 b0 = _mm512_maskz_loadu_ps(m0, b + k * ldb);
    const __m512 b1 = _mm512_maskz_loadu_ps(m1, b + k * ldb + 16);
    const float* ak = a + k * a_col;
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512 av = _mm512_set1_ps(ak[i * a_row]);
      acc0[i] = _mm512_fmadd_ps(av, b0, acc0[i]);
      acc1[i] = _mm512_fmadd_ps(av, b1, acc1[i]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    _mm512_mask_storeu_ps(c + i * ldc, m0, acc0[i]);
    _mm512_mask_storeu_ps(c + i * ldc + 16, m1, acc1[i]);
  }
}

using TileFn = void (*)(const float*, int64_t, int64_t, const float*, int64_t, float*, int64_t, int64_t, __mmask16,
                        __mmask16);
constexpr TileFn kTiles[8] = {tile<1>, tile<2>, tile<3>, tile<4>, tile<5>, tile<6>, tile<7>, tile<8>};

SLMOPT_AVX512 void gemm(const GemmArgs& g) {
  for (int64_t k0 = 0; k0 < g.k; k0 += kKBlock) {
    const int64_t kb = std::min(kKBlock, g.k - k0);
    for (int64_t j0 = 0; j0 < g.n; j0 += 32) {
      const int64_t w = std::min<int64_t>(32, g.n - j0);
      const __mmask16 m0 = static_cast<__mmask16>(w >= 16 ? 0xFFFF : (1u << w) - 1u);
      const __mmask16 m1 = static_cast<__mmask16>(w >= 32 ? 0xFFFF : w > 16 ? (1u << (w - 16)) - 1u : 0u);
      for (int64_t i0 = 0; i0 < g.m; i0 += 8) {
        const int64_t mr = std::min<int64_t>(8, g.m - i0);
        kTiles[mr - 1](g.a + i0 * g.a_row + k0 * g.a_col, g.a_row, g.a_col, g.b + k0 * g.ldb + j0, g.ldb,
                       g.c + i0 * g.ldc + j0, g.ldc, kb, m0, m1);
      }
    }
  }
}

}  // namespace
}  // namespace simd_avx512

GemmFn avx512_gemm() { return simd_avx512::gemm; }

}  // namespace slmopt::gemm_kernels

#else

namespace slmopt::gemm_kernels {
GemmFn avx512_gemm() { return nullptr; }
}  // namespace slmopt::gemm_kernels

#endif
