// Two copies of the quantizers' hot loops (private to src/quant): one at the build's baseline ISA (x86-64:
// SSE2), one compiled for AVX2 + FMA + F16C, picked per call by the kernel set exec/cpu_features chose
// (SLMOPT_KERNEL=portable forces the baseline copy). The vector-extension searches of lane_vector.h run their
// 8 lanes in one ymm register instead of two xmm halves in the AVX2 copy.
//
// Both copies give the same bits: the code is the same, -ffp-contract=off keeps a*b+c unfused in both, and
// vector lanes round exactly as scalar floats do. tests/unit/quantize_test.cpp compares the two bit for bit.
#pragma once

#include "slmopt/exec/cpu_features.h"

namespace slmopt::quant_detail {

// Whether the AVX2 copies run: kernel_isa() is an atomic read and a static, cheap next to a block's search.
inline bool use_avx2_copy() { return kernel_isa() != KernelIsa::Portable; }

}  // namespace slmopt::quant_detail

// SLMOPT_QUANT_DISPATCH(ret, name, params, args) defines `ret name params` over `ret name##_body params`
// (defined before it in the same file): the AVX2 copy name##_avx2 inlines the body and everything it calls in
// this translation unit (flatten), so the whole search is compiled for AVX2; calls into other files stay calls
// (those files dispatch their own entry points). `args` forwards the parameters: (x, dst, n).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SLMOPT_QUANT_DISPATCH(ret, name, params, args)                                        \
  __attribute__((target("avx2,fma,f16c"), flatten)) static ret name##_avx2 params {           \
    return name##_body args;                                                                 \
  }                                                                                          \
  ret name params { return ::slmopt::quant_detail::use_avx2_copy() ? name##_avx2 args : name##_body args; }
#else
// Clang (the fuzz build) has no flatten-through-target inlining to rely on: one copy at the baseline.
#define SLMOPT_QUANT_DISPATCH(ret, name, params, args) \
  ret name params { return name##_body args; }
#endif

// The dispatcher of a row encoder `void name(const float* x, uint8_t* dst, int64_t n, const float* importance)`.
#define SLMOPT_QUANT_DISPATCH_ROW(name)                                                                  \
  SLMOPT_QUANT_DISPATCH(void, name, (const float* x, uint8_t* dst, int64_t n, const float* importance), \
                        (x, dst, n, importance))
