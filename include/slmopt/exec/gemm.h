// Dense F32 matrix products for the calibration solvers (GPTQ's Hessians XᵀX, its Cholesky factorisation and
// triangular inverse, and its lazy-batch column updates), with one summation order everywhere:
//
//   C(i,j) += Σ_k A(i,k)·B(k,j)   as one fused multiply-add per k, in increasing k, straight into C(i,j).
//
// So every element is the same chain of roundings whatever the kernel set (AVX-512, AVX2 or the portable
// std::fma loop, chosen as exec/cpu_features.h says), the tiling, the cache blocking over k (C is stored and reloaded exactly between k blocks) or the
// thread count: results are byte-identical across all of them. The AVX-512 kernel keeps an 8 × 32 tile of C in
// 16 zmm registers (AVX2: 6 × 16 in 12 ymm) and broadcasts A, so A may be read with any strides (XᵀX reads A = Xᵀ straight from X).
//
// Layout: A(i,k) = a[i·a_row + k·a_col], B(k,j) = b[k·ldb + j], C(i,j) = c[i·ldc + j].
#pragma once

#include <cstdint>

namespace slmopt {

struct GemmArgs {
  int64_t m = 0, n = 0, k = 0;
  const float* a = nullptr;
  int64_t a_row = 0, a_col = 1;
  const float* b = nullptr;
  int64_t ldb = 0;
  float* c = nullptr;
  int64_t ldc = 0;
};

// One thread. `portable` forces the std::fma loop (tests compare it with the fast kernel).
void gemm_accumulate(const GemmArgs& g, bool portable = false);

// The same product split over the thread pool in fixed 64-row × 256-column tiles of C. lower_only / upper_only
// skip tiles wholly above / below the diagonal (the caller only reads that triangle; elements near the
// diagonal on the other side may still be written).
enum class GemmTriangle { Full, LowerOnly, UpperOnly };
void gemm_accumulate_parallel(const GemmArgs& g, GemmTriangle triangle = GemmTriangle::Full);

// The name of the kernel gemm_accumulate runs ("avx512", "avx2" or "portable").
const char* gemm_kernel_name();

}  // namespace slmopt
