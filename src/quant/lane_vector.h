// Eight-lane float vectors (GCC/Clang vector extensions, so the same source compiles to AVX2 in the AVX2 copies
// of simd_dispatch.h, to pairs of SSE2 registers at the x86-64 baseline, and to NEON or scalar code elsewhere)
// for the quantizers' candidate searches (private to src/quant).
//
// The searches evaluate many candidate scales of one group. Putting one candidate in each lane and looping over
// the group's elements in order keeps every candidate's sums in exactly the order of a scalar loop, so the
// vectorised searches give bit-identical results to the scalar code they replace (-ffp-contract=off keeps
// a*b+c from fusing). Only the comparisons between candidates move out of the loop.
#pragma once

#include <cstdint>

namespace slmopt::quant_detail {

using F8 = float __attribute__((vector_size(32)));
using I8 = int32_t __attribute__((vector_size(32)));
constexpr int kLanes = 8;

inline F8 splat(float v) { return F8{v, v, v, v, v, v, v, v}; }

// Round to nearest, ties to even, as ggml's nearest_int for |v| < 2^22 (every caller's range): adding 1.5·2^23
// leaves the rounded integer in the mantissa, and subtracting it back is exact.
inline F8 round_even(F8 v) {
  const F8 magic = splat(12582912.f);
  return (v + magic) - magic;
}

inline F8 clamp8(F8 v, float lo, float hi) {
  const F8 l = splat(lo), h = splat(hi);
  v = v < l ? l : v;
  return v > h ? h : v;
}

inline F8 abs8(F8 v) { return v < splat(0.f) ? -v : v; }

// Lane index as float: base, base+1, ..., base+7.
inline F8 iota8(int base) {
  const float b = static_cast<float>(base);
  return F8{b, b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7};
}

}  // namespace slmopt::quant_detail
