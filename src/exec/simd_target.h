// Function-level target attributes of the SIMD kernel files (internal to exec): the build stays at its baseline
// ISA and these functions only run after exec/cpu_features found the instructions.
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>

// GCC 12's avx512fintrin.h builds _mm512_undefined_* from a self-initialised variable (GCC bug 105593), which
// -Wuninitialized reports at every inlined AVX-512 intrinsic; the values are never read.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#define SLMOPT_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))
#define SLMOPT_AVX2 __attribute__((target("avx2,fma,f16c")))

#endif
