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

// No helper returns a freshly built vector (F8{v, v, ...}): when GCC inlines such a helper into a baseline-ISA
// function it stores the returned vector lane by lane, and the AVX2 copies of simd_dispatch.h inline the
// baseline bodies as they are, so they inherited the split (chains of vinsertps where one broadcast does).
// Scalars mixed into vector expressions broadcast in place instead, and F8{} is the zero vector.

// Round to nearest, ties to even, as ggml's nearest_int for |v| < 2^22 (every caller's range): adding 1.5·2^23
// leaves the rounded integer in the mantissa, and subtracting it back is exact.
inline F8 round_even(F8 v) { return (v + 12582912.f) - 12582912.f; }

inline F8 clamp8(F8 v, float lo, float hi) {
  v = v < lo ? lo : v;
  return v > hi ? hi : v;
}

inline F8 abs8(F8 v) { return v < 0.f ? -v : v; }

// Lane index as float: base, base+1, ..., base+7 (base + 0 is base: no int converts to −0).
inline constexpr F8 kLaneIndex{0, 1, 2, 3, 4, 5, 6, 7};
inline F8 iota8(int base) { return static_cast<float>(base) + kLaneIndex; }

}  // namespace slmopt::quant_detail
