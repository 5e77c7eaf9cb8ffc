// The i-quant lattice decoders of the AVX2 and AVX-512 kernel sets (internal to exec): the 8-lane puts, then
// the walk of ir/iquant_lattice_walk.h over them. Not a normal header: a set's .cpp includes it inside its own
// anonymous namespace, after its includes of <cstring>, <immintrin.h>, ir/block_structs.h and ir/iquant_grids.h,
// with SLMOPT_IQ_TARGET defined as its target attribute. Only IQ4_XS (a 16-level table, like IQ4_NL) is per set.
//
// Bit-identical to the scalar puts of ir/block_formats_iquant.cpp: each value is scale * grid value (IQ1:
// scale * (grid value + delta)) in one float multiply, and the sign is applied last by flipping the sign bit,
// which is what the scalar negation does.
#pragma once

SLMOPT_IQ_TARGET inline __m256 grid_bytes(uint64_t grid, bool is_signed) {
  const __m128i v = _mm_cvtsi64_si128(static_cast<long long>(grid));
  return _mm256_cvtepi32_ps(is_signed ? _mm256_cvtepi8_epi32(v) : _mm256_cvtepu8_epi32(v));
}

// y[j] = scale * grid byte j, negated where bit j of `signs` is set.
SLMOPT_IQ_TARGET inline void put_group8(float* y, float scale, uint64_t grid, unsigned signs) {
  const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  const __m256i negative = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(static_cast<int>(signs)), bit), bit);
  const __m256 v = _mm256_mul_ps(_mm256_set1_ps(scale), grid_bytes(grid, false));
  _mm256_storeu_ps(y, _mm256_xor_ps(v, _mm256_castsi256_ps(_mm256_slli_epi32(negative, 31))));
}

// IQ1: y[j] = scale * (signed grid byte j + delta).
SLMOPT_IQ_TARGET inline void put_iq1_group8(float* y, float scale, uint64_t grid, float delta) {
  const __m256 v = _mm256_add_ps(grid_bytes(grid, true), _mm256_set1_ps(delta));
  _mm256_storeu_ps(y, _mm256_mul_ps(_mm256_set1_ps(scale), v));
}

#include "../ir/iquant_lattice_walk.h"  // the decoders, over the puts above
