// The AVX2 kernel set (AVX2 + FMA + F16C). Each output keeps its 16 lanes as two ymm halves (lanes 0-7 and
// 8-15), so the arithmetic is exactly the AVX-512 set's and the portable set's; 2 tokens × 3 weight rows use
// 12 of the 16 registers as accumulators. Decoders cover the plain half types and Q8_0/Q4_0 (bit-identical
// to ir/block_formats); other block types fall back to dequantize_row.
#include "linear_kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>

#include <array>
#include <cstring>
#include <utility>

#include "slmopt/core/half.h"
#include "slmopt/ir/block_structs.h"

#define SLMOPT_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace slmopt::linear_kernels {
namespace {

constexpr int kRegRows = 2;
constexpr int kRegCols = 3;

SLMOPT_AVX2 inline float fold(__m256 lo, __m256 hi) {
  const __m256 s8 = _mm256_add_ps(lo, hi);
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

// Lane mask for the lanes l < count of one 8-lane half.
SLMOPT_AVX2 inline __m256i half_mask(int64_t count) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)), lane);
}

template <int MR, int NR>
SLMOPT_AVX2 void tile(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t K, bool accumulate,
                      const float* bias, float* y, int64_t ldy) {
  __m256 acc[MR][NR][2];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) acc[i][j][0] = acc[i][j][1] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      __m256 xv[MR];
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) xv[i] = _mm256_loadu_ps(x + i * ldx + k + 8 * h);
#pragma GCC unroll 8
      for (int j = 0; j < NR; ++j) {
        const __m256 wv = _mm256_loadu_ps(w + j * ldw + k + 8 * h);
#pragma GCC unroll 8
        for (int i = 0; i < MR; ++i) acc[i][j][h] = _mm256_fmadd_ps(xv[i], wv, acc[i][j][h]);
      }
    }
  }
  for (int h = 0; h < 2 && k + 8 * h < K; ++h) {  // tail: lanes past K keep their value
    const __m256i mask = half_mask(K - k - 8 * h);
    __m256 xv[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) xv[i] = _mm256_maskload_ps(x + i * ldx + k + 8 * h, mask);
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) {
      const __m256 wv = _mm256_maskload_ps(w + j * ldw + k + 8 * h, mask);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i)
        acc[i][j][h] = _mm256_blendv_ps(acc[i][j][h], _mm256_fmadd_ps(xv[i], wv, acc[i][j][h]),
                                        _mm256_castsi256_ps(mask));
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) {
      const float sum = fold(acc[i][j][0], acc[i][j][1]);
      const float total = accumulate ? y[i * ldy + j] + sum : sum;
      y[i * ldy + j] = bias ? total + bias[j] : total;
    }
}

using TileFn = void (*)(const float*, int64_t, const float*, int64_t, int64_t, bool, const float*, float*,
                       int64_t);

template <int MR, size_t... J>
constexpr std::array<TileFn, kRegCols> tile_row(std::index_sequence<J...>) {
  return {&tile<MR, static_cast<int>(J) + 1>...};
}

constexpr std::array<std::array<TileFn, kRegCols>, kRegRows> kTiles = {
    tile_row<1>(std::make_index_sequence<kRegCols>{}), tile_row<2>(std::make_index_sequence<kRegCols>{})};

void avx2_dot_tile(const float* x, int64_t ldx, int64_t T, const float* w, int64_t ldw, int64_t N, int64_t K,
                   bool accumulate, const float* bias, float* y, int64_t ldy) {
  for (int64_t t0 = 0; t0 < T; t0 += kRegRows) {
    const int64_t mr = std::min<int64_t>(kRegRows, T - t0);
    for (int64_t n0 = 0; n0 < N; n0 += kRegCols) {
      const int64_t nr = std::min<int64_t>(kRegCols, N - n0);
      kTiles[static_cast<size_t>(mr - 1)][static_cast<size_t>(nr - 1)](
          x + t0 * ldx, ldx, w + n0 * ldw, ldw, K, accumulate, bias ? bias + n0 : nullptr, y + t0 * ldy + n0, ldy);
    }
  }
}

// ---- decoders -------------------------------------------------------------------------------------------

using namespace blocks;

SLMOPT_AVX2 void decode_f16(const uint8_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i))));
  for (; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    dst[i] = f16_to_f32(h);
  }
}

SLMOPT_AVX2 void decode_bf16(const uint8_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i)));
    _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16)));
  }
  for (; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    dst[i] = bf16_to_f32(h);
  }
}

SLMOPT_AVX2 inline __m256i bytes8_i32(const uint8_t* p, bool is_signed) {
  const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  return is_signed ? _mm256_cvtepi8_epi32(v) : _mm256_cvtepu8_epi32(v);
}

SLMOPT_AVX2 void decode_q8_0(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, y += kQK) {
    const uint8_t* block = src + static_cast<size_t>(b) * sizeof(Q8_0);
    uint16_t dbits;
    std::memcpy(&dbits, block, 2);
    const __m256 d = _mm256_set1_ps(f16_to_f32(dbits));
    for (int q = 0; q < 4; ++q)
      _mm256_storeu_ps(y + 8 * q, _mm256_mul_ps(_mm256_cvtepi32_ps(bytes8_i32(block + 2 + 8 * q, true)), d));
  }
}

SLMOPT_AVX2 void decode_q4_0(const uint8_t* src, float* y, int64_t nb) {
  const __m256i low4 = _mm256_set1_epi32(0xF), eight = _mm256_set1_epi32(8);
  for (int64_t b = 0; b < nb; ++b, y += kQK) {
    const uint8_t* block = src + static_cast<size_t>(b) * sizeof(Q4_0);
    uint16_t dbits;
    std::memcpy(&dbits, block, 2);
    const __m256 d = _mm256_set1_ps(f16_to_f32(dbits));
    for (int q = 0; q < 2; ++q) {
      const __m256i v = bytes8_i32(block + 2 + 8 * q, false);
      const __m256i lo = _mm256_sub_epi32(_mm256_and_si256(v, low4), eight);
      const __m256i hi = _mm256_sub_epi32(_mm256_srli_epi32(v, 4), eight);
      _mm256_storeu_ps(y + 8 * q, _mm256_mul_ps(_mm256_cvtepi32_ps(lo), d));
      _mm256_storeu_ps(y + 16 + 8 * q, _mm256_mul_ps(_mm256_cvtepi32_ps(hi), d));
    }
  }
}

SLMOPT_AVX2 bool avx2_decode_rows(DType dtype, const uint8_t* src, size_t row_bytes, int64_t rows, int64_t K,
                                  float* dst) {
  void (*row_fn)(const uint8_t*, float*, int64_t) = nullptr;
  int64_t count = K;
  switch (dtype) {
    case DType::F16: row_fn = decode_f16; break;
    case DType::BF16: row_fn = decode_bf16; break;
    case DType::Q8_0: row_fn = decode_q8_0, count = K / kQK; break;
    case DType::Q4_0: row_fn = decode_q4_0, count = K / kQK; break;
    default: return false;
  }
  for (int64_t r = 0; r < rows; ++r) row_fn(src + static_cast<size_t>(r) * row_bytes, dst + r * K, count);
  return true;
}

}  // namespace

const KernelSet& avx2_set() {
  static const KernelSet set{avx2_dot_tile, avx2_decode_rows, kRegCols};
  return set;
}

}  // namespace slmopt::linear_kernels

#else  // not x86-64: cpu_features never selects this set

namespace slmopt::linear_kernels {
const KernelSet& avx2_set() { return portable_set(); }
}  // namespace slmopt::linear_kernels

#endif
