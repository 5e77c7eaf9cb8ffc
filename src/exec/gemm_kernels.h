// The inner kernels of exec/gemm.h (internal to exec): one per instruction set, all with gemm.h's summation
// order (one fused multiply-add per k, increasing k, into C).
#pragma once

#include "slmopt/exec/gemm.h"

namespace slmopt::gemm_kernels {

using GemmFn = void (*)(const GemmArgs& g);

void portable_gemm(const GemmArgs& g);
// nullptr when the build has no AVX-512 / AVX2 code (non-x86 or another compiler).
GemmFn avx512_gemm();
GemmFn avx2_gemm();

}  // namespace slmopt::gemm_kernels
