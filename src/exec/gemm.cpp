// Dispatch and tiling of exec/gemm.h. The portable kernel is the definition of the result: every other kernel
// reproduces its per-element fma chain bit for bit (tests/unit/gemm_test.cpp).
#include "slmopt/exec/gemm.h"

#include <algorithm>
#include <cmath>

#include "gemm_kernels.h"
#include "slmopt/core/parallel.h"
#include "slmopt/exec/cpu_features.h"

namespace slmopt {

namespace gemm_kernels {

void portable_gemm(const GemmArgs& g) {
  for (int64_t i = 0; i < g.m; ++i) {
    float* c = g.c + i * g.ldc;
    for (int64_t k = 0; k < g.k; ++k) {
      const float a = g.a[i * g.a_row + k * g.a_col];
      const float* b = g.b + k * g.ldb;
      for (int64_t j = 0; j < g.n; ++j) c[j] = std::fma(a, b[j], c[j]);
    }
  }
}

}  // namespace gemm_kernels

namespace {

// The kernel of the set kernel_isa() names (SLMOPT_KERNEL or set_kernel_isa force one), portable when the
// build lacks it.
gemm_kernels::GemmFn chosen_kernel() {
  gemm_kernels::GemmFn fn = nullptr;
  switch (kernel_isa()) {
    case KernelIsa::Avx512: fn = gemm_kernels::avx512_gemm(); break;
    case KernelIsa::Avx2: fn = gemm_kernels::avx2_gemm(); break;
    case KernelIsa::Portable: break;
  }
  return fn ? fn : gemm_kernels::portable_gemm;
}

}  // namespace

void gemm_accumulate(const GemmArgs& g, bool portable) {
  if (g.m <= 0 || g.n <= 0 || g.k <= 0) return;
  (portable ? gemm_kernels::portable_gemm : chosen_kernel())(g);
}

const char* gemm_kernel_name() {
  const auto fn = chosen_kernel();
  if (fn == gemm_kernels::portable_gemm) return "portable";
  return fn == gemm_kernels::avx2_gemm() ? "avx2" : "avx512";
}

void gemm_accumulate_parallel(const GemmArgs& g, GemmTriangle triangle) {
  if (g.m <= 0 || g.n <= 0 || g.k <= 0) return;
  constexpr int64_t kRows = 64, kCols = 256;
  const int64_t row_tiles = (g.m + kRows - 1) / kRows, col_tiles = (g.n + kCols - 1) / kCols;
  struct Tile {
    int64_t i0, j0;
  };
  std::vector<Tile> tiles;
  for (int64_t ti = 0; ti < row_tiles; ++ti)
    for (int64_t tj = 0; tj < col_tiles; ++tj) {
      const int64_t i0 = ti * kRows, j0 = tj * kCols;
      const int64_t i1 = std::min(g.m, i0 + kRows), j1 = std::min(g.n, j0 + kCols);
      if (triangle == GemmTriangle::LowerOnly && j0 >= i1) continue;  // wholly above the diagonal
      if (triangle == GemmTriangle::UpperOnly && i0 >= j1) continue;  // wholly below
      tiles.push_back({i0, j0});
    }
  const auto kernel = chosen_kernel();
  parallel_for(tiles.size(), [&](size_t begin, size_t end) {
    for (size_t t = begin; t < end; ++t) {
      GemmArgs s = g;
      s.m = std::min(kRows, g.m - tiles[t].i0);
      s.n = std::min(kCols, g.n - tiles[t].j0);
      s.a = g.a + tiles[t].i0 * g.a_row;
      s.b = g.b + tiles[t].j0;
      s.c = g.c + tiles[t].i0 * g.ldc + tiles[t].j0;
      kernel(s);
    }
  });
}

}  // namespace slmopt
