// The AVX2 kernel set (AVX2 + FMA + F16C). Each output keeps its 16 lanes as two ymm halves (lanes 0-7 and
// 8-15), so the arithmetic is exactly the AVX-512 set's and the portable set's; 2 tokens × 3 weight rows use
// 12 of the 16 registers as accumulators. Decoders cover the plain half types and every block type the AVX-512
// set decodes (bit-identical to ir/block_formats, 8 values per instruction instead of 16); the lattice
// i-quants come from iquant_row_decoders.h, shared with the AVX-512 set.
#include "linear_kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <array>
#include <cstring>
#include <utility>

#include "simd_target.h"
#include "slmopt/core/half.h"
#include "slmopt/ir/block_structs.h"
#include "slmopt/ir/iquant_grids.h"

namespace slmopt::linear_kernels {
// The ISA in the namespace name: code here runs only after exec/cpu_features found these instructions, and
// tests/integration/baseline_isa_test.sh allows AVX instructions only in functions so named.
namespace simd_avx2 {
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

// Q6_K: as the AVX-512 decoder, 8 values at a time ((d*scale) * (q - 32)).
SLMOPT_AVX2 void decode_q6_k(const uint8_t* src, float* y, int64_t nb) {
  const __m256i low4 = _mm256_set1_epi32(0xF), three = _mm256_set1_epi32(3), bias = _mm256_set1_epi32(32);
  for (int64_t b = 0; b < nb; ++b, y += kQKK) {
    const auto blk = load_block<Q6_K>(src, b);
    const float d = f16_to_f32(blk.d);
    for (int half = 0; half < 2; ++half)
      for (int k = 0; k < 4; ++k) {
        const __m128i shift = _mm_cvtsi32_si128(2 * k);
        for (int l = 0; l < 32; l += 8) {
          const int e = 128 * half + 32 * k + l;
          __m256i low = bytes8_i32(blk.ql + 64 * half + 32 * (k % 2) + l, false);
          low = k < 2 ? _mm256_and_si256(low, low4) : _mm256_srli_epi32(low, 4);
          const __m256i high =
              _mm256_and_si256(_mm256_srl_epi32(bytes8_i32(blk.qh + 32 * half + l, false), shift), three);
          const __m256i q = _mm256_sub_epi32(_mm256_or_si256(low, _mm256_slli_epi32(high, 4)), bias);
          const __m256 ds = _mm256_set1_ps(d * static_cast<float>(blk.scales[e / 16]));
          _mm256_storeu_ps(y + e, _mm256_mul_ps(ds, _mm256_cvtepi32_ps(q)));
        }
      }
  }
}

SLMOPT_AVX2 inline __m256 half_scale(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return _mm256_set1_ps(f16_to_f32(bits));
}

// 1 for lanes l whose bit (l + first) of the little-endian 32-bit word at p is set, else 0.
SLMOPT_AVX2 inline __m256i bit_lanes(const uint8_t* p, int first) {
  uint32_t bits;
  std::memcpy(&bits, p, 4);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(bits >> first)), lane),
                          _mm256_set1_epi32(1));
}

// Q4_1 (d*q + m), Q5_0 (d*(q-16)), Q5_1 (d*q + m): as the AVX-512 decoders, 8 values at a time; element
// 8*h + l (h < 2) is the low nibble of qs[8*h + l], element 16 + 8*h + l the high one.
SLMOPT_AVX2 void decode_q4_1(const uint8_t* src, float* y, int64_t nb) {
  const __m256i low4 = _mm256_set1_epi32(0xF);
  for (int64_t b = 0; b < nb; ++b, y += kQK) {
    const uint8_t* block = src + static_cast<size_t>(b) * sizeof(Q4_1);
    const __m256 d = half_scale(block), m = half_scale(block + 2);
    for (int h = 0; h < 2; ++h) {
      const __m256i q = bytes8_i32(block + 4 + 8 * h, false);
      const __m256 lo = _mm256_cvtepi32_ps(_mm256_and_si256(q, low4));
      const __m256 hi = _mm256_cvtepi32_ps(_mm256_srli_epi32(q, 4));
      _mm256_storeu_ps(y + 8 * h, _mm256_add_ps(_mm256_mul_ps(lo, d), m));
      _mm256_storeu_ps(y + 16 + 8 * h, _mm256_add_ps(_mm256_mul_ps(hi, d), m));
    }
  }
}

template <bool kHasMin>
SLMOPT_AVX2 void decode_q5(const uint8_t* src, float* y, int64_t nb) {
  constexpr size_t kBytes = kHasMin ? sizeof(Q5_1) : sizeof(Q5_0);
  constexpr int kQh = kHasMin ? 4 : 2;
  const __m256i low4 = _mm256_set1_epi32(0xF), sixteen = _mm256_set1_epi32(16);
  for (int64_t b = 0; b < nb; ++b, y += kQK) {
    const uint8_t* block = src + static_cast<size_t>(b) * kBytes;
    const __m256 d = half_scale(block);
    for (int h = 0; h < 2; ++h) {
      const __m256i q = bytes8_i32(block + kQh + 4 + 8 * h, false);
      __m256i lo = _mm256_or_si256(_mm256_and_si256(q, low4), _mm256_slli_epi32(bit_lanes(block + kQh, 8 * h), 4));
      __m256i hi =
          _mm256_or_si256(_mm256_srli_epi32(q, 4), _mm256_slli_epi32(bit_lanes(block + kQh, 16 + 8 * h), 4));
      if constexpr (kHasMin) {
        const __m256 m = half_scale(block + 2);
        _mm256_storeu_ps(y + 8 * h, _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(lo), d), m));
        _mm256_storeu_ps(y + 16 + 8 * h, _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(hi), d), m));
      } else {
        lo = _mm256_sub_epi32(lo, sixteen);
        hi = _mm256_sub_epi32(hi, sixteen);
        _mm256_storeu_ps(y + 8 * h, _mm256_mul_ps(_mm256_cvtepi32_ps(lo), d));
        _mm256_storeu_ps(y + 16 + 8 * h, _mm256_mul_ps(_mm256_cvtepi32_ps(hi), d));
      }
    }
  }
}

// IQ4_NL: d * level[q]; the 16 levels in two registers, picked with two 8-way permutes and a blend on bit 3.
SLMOPT_AVX2 inline __m256 iq4nl_levels(__m256i q, __m256 low_table, __m256 high_table) {
  const __m256 upper = _mm256_castsi256_ps(_mm256_cmpgt_epi32(q, _mm256_set1_epi32(7)));
  return _mm256_blendv_ps(_mm256_permutevar8x32_ps(low_table, q), _mm256_permutevar8x32_ps(high_table, q), upper);
}

SLMOPT_AVX2 void decode_iq4_nl(const uint8_t* src, float* y, int64_t nb) {
  alignas(32) float levels[16];
  for (int i = 0; i < 16; ++i) levels[i] = static_cast<float>(kIq4nlValues[static_cast<size_t>(i)]);
  const __m256 low_table = _mm256_load_ps(levels), high_table = _mm256_load_ps(levels + 8);
  const __m256i low4 = _mm256_set1_epi32(0xF);
  for (int64_t b = 0; b < nb; ++b, y += kQK) {
    const uint8_t* block = src + static_cast<size_t>(b) * sizeof(IQ4_NL);
    const __m256 d = half_scale(block);
    for (int h = 0; h < 2; ++h) {
      const __m256i q = bytes8_i32(block + 2 + 8 * h, false);
      _mm256_storeu_ps(y + 8 * h, _mm256_mul_ps(d, iq4nl_levels(_mm256_and_si256(q, low4), low_table, high_table)));
      _mm256_storeu_ps(y + 16 + 8 * h,
                       _mm256_mul_ps(d, iq4nl_levels(_mm256_srli_epi32(q, 4), low_table, high_table)));
    }
  }
}

// IQ4_XS: IQ4_NL's levels under a 6-bit sub-scale per 32 values, dl = d * (ls - 32).
SLMOPT_AVX2 void decode_iq4_xs(const uint8_t* src, float* y, int64_t nb) {
  alignas(32) float levels[16];
  for (int i = 0; i < 16; ++i) levels[i] = static_cast<float>(kIq4nlValues[static_cast<size_t>(i)]);
  const __m256 low_table = _mm256_load_ps(levels), high_table = _mm256_load_ps(levels + 8);
  const __m256i low4 = _mm256_set1_epi32(0xF);
  for (int64_t b = 0; b < nb; ++b) {
    const auto blk = load_block<IQ4_XS>(src, b);
    const float d = f16_to_f32(blk.d);
    for (int s = 0; s < kQKK / 32; ++s, y += 32) {
      const int ls = ((blk.scales_l[s / 2] >> (4 * (s % 2))) & 0xF) | (((blk.scales_h >> (2 * s)) & 3) << 4);
      const __m256 dl = _mm256_set1_ps(d * static_cast<float>(ls - 32));
      for (int h = 0; h < 2; ++h) {
        const __m256i q = bytes8_i32(blk.qs + 16 * s + 8 * h, false);
        _mm256_storeu_ps(y + 8 * h, _mm256_mul_ps(dl, iq4nl_levels(_mm256_and_si256(q, low4), low_table, high_table)));
        _mm256_storeu_ps(y + 16 + 8 * h,
                         _mm256_mul_ps(dl, iq4nl_levels(_mm256_srli_epi32(q, 4), low_table, high_table)));
      }
    }
  }
}

// Q4_K and Q5_K: as the AVX-512 decoders, 8 values at a time (dl*q - ml, each rounded as ir/block_formats
// rounds it; Q5_K's fifth bit is bit s of qh[l] for value 32*s + l).
template <typename Block, bool kFifthBit>
SLMOPT_AVX2 void decode_k4(const uint8_t* src, float* y, int64_t nb) {
  const __m256i low4 = _mm256_set1_epi32(0xF), one = _mm256_set1_epi32(1);
  for (int64_t b = 0; b < nb; ++b, y += kQKK) {
    const auto blk = load_block<Block>(src, b);
    const float d = f16_to_f32(blk.d), dmin = f16_to_f32(blk.dmin);
    for (int s = 0; s < kQKK / 32; ++s) {
      uint8_t sc, mn;
      unpack_k4_scale_min(blk.scales, s, sc, mn);
      const __m256 dl = _mm256_set1_ps(d * static_cast<float>(sc));
      const __m256 ml = _mm256_set1_ps(dmin * static_cast<float>(mn));
      for (int e = 0; e < 32; e += 8) {
        __m256i q = bytes8_i32(blk.qs + 32 * (s / 2) + e, false);
        q = (s % 2) ? _mm256_srli_epi32(q, 4) : _mm256_and_si256(q, low4);
        if constexpr (kFifthBit) {
          const __m256i high =
              _mm256_and_si256(_mm256_srl_epi32(bytes8_i32(blk.qh + e, false), _mm_cvtsi32_si128(s)), one);
          q = _mm256_or_si256(q, _mm256_slli_epi32(high, 4));
        }
        _mm256_storeu_ps(y + 32 * s + e, _mm256_sub_ps(_mm256_mul_ps(dl, _mm256_cvtepi32_ps(q)), ml));
      }
    }
  }
}
constexpr auto decode_q4_k = decode_k4<Q4_K, false>;
constexpr auto decode_q5_k = decode_k4<Q5_K, true>;

// Q2_K and Q3_K: value 16*s + i of a super-block takes two bits of qs[32*(s/8) + 16*(s%2) + i] at bit
// 2*((s%8)/2); Q3_K's third bit is bit s/2 of hmask[16*(s%2) + i] (clear means q - 4). `h` picks i in 8h..8h+7.
SLMOPT_AVX2 inline __m256i two_bits(const uint8_t* qs, int s, int h) {
  const __m128i shift = _mm_cvtsi32_si128(2 * ((s % 8) / 2));
  return _mm256_and_si256(_mm256_srl_epi32(bytes8_i32(qs + 32 * (s / 8) + 16 * (s % 2) + 8 * h, false), shift),
                          _mm256_set1_epi32(3));
}

SLMOPT_AVX2 void decode_q2_k(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, y += kQKK) {
    const auto blk = load_block<Q2_K>(src, b);
    const float d = f16_to_f32(blk.d), dmin = f16_to_f32(blk.dmin);
    for (int s = 0; s < kQKK / 16; ++s) {
      const __m256 dl = _mm256_set1_ps(d * static_cast<float>(blk.scales[s] & 0xF));
      const __m256 ml = _mm256_set1_ps(dmin * static_cast<float>(blk.scales[s] >> 4));
      for (int h = 0; h < 2; ++h) {
        const __m256 q = _mm256_cvtepi32_ps(two_bits(blk.qs, s, h));
        _mm256_storeu_ps(y + 16 * s + 8 * h, _mm256_sub_ps(_mm256_mul_ps(dl, q), ml));
      }
    }
  }
}

SLMOPT_AVX2 void decode_q3_k(const uint8_t* src, float* y, int64_t nb) {
  const __m256i one = _mm256_set1_epi32(1), four = _mm256_set1_epi32(4);
  for (int64_t b = 0; b < nb; ++b, y += kQKK) {
    const auto blk = load_block<Q3_K>(src, b);
    const float d = f16_to_f32(blk.d);
    for (int s = 0; s < kQKK / 16; ++s) {
      const __m256 dl =
          _mm256_set1_ps(d * static_cast<float>(static_cast<int>(unpack_q3k_scale(blk.scales, s)) - 32));
      for (int h = 0; h < 2; ++h) {
        const __m256i high = _mm256_and_si256(
            _mm256_srl_epi32(bytes8_i32(blk.hmask + 16 * (s % 2) + 8 * h, false), _mm_cvtsi32_si128(s / 2)), one);
        // q - 4 where the high bit is clear: q - 4 + 4*high.
        const __m256i q =
            _mm256_add_epi32(_mm256_sub_epi32(two_bits(blk.qs, s, h), four), _mm256_slli_epi32(high, 2));
        _mm256_storeu_ps(y + 16 * s + 8 * h, _mm256_mul_ps(dl, _mm256_cvtepi32_ps(q)));
      }
    }
  }
}

#define SLMOPT_IQ_TARGET SLMOPT_AVX2
#include "iquant_row_decoders.h"  // the lattice i-quants, shared with the other SIMD set
#undef SLMOPT_IQ_TARGET

#include "row_decoder_table.h"  // row_decoder and decode_rows over this file's decoders

}  // namespace
}  // namespace simd_avx2

const KernelSet& avx2_set() {
  static const KernelSet set{simd_avx2::avx2_dot_tile, simd_avx2::decode_rows, simd_avx2::kRegCols};
  return set;
}

}  // namespace slmopt::linear_kernels

#else  // not x86-64: cpu_features never selects this set

namespace slmopt::linear_kernels {
const KernelSet& avx2_set() { return portable_set(); }
}  // namespace slmopt::linear_kernels

#endif
