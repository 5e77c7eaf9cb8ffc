// The AVX-512 kernel set (F/BW/VL/DQ), compiled with per-function target attributes so the rest of the build
// stays at its baseline ISA and this code only runs after cpu_features found the instructions. The dot-product tile keeps
// 4 tokens × 6 weight rows of 16-lane accumulators in 24 of the 32 zmm registers: per 16 values of k it loads
// 10 vectors for 24 fused multiply-adds, so the FMA units, not the loads, set the pace. Decoders turn stored
// blocks into floats with the same float operations as ir/block_formats (int → float conversions are exact,
// and each product or difference is rounded once, in the same order), so they are bit-identical to it.
#include "linear_kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <algorithm>
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
namespace simd_avx512 {
namespace {

constexpr int kRegRows = 4;
constexpr int kRegCols = 6;

// linear_kernels.h's tree for four accumulators at once: 16 → 8 (i + i+8), 8 → 4 (i + i+4), 4 → 2 (i + i+2),
// 2 → 1, each level one add over all four (the sums land in lanes 0, 4, 8 and 12). 14 instructions instead
// of 4 × 9: the fold is ~10 % of a 1024-long chunk otherwise.
SLMOPT_AVX512 inline void fold4(__m512 a, __m512 b, __m512 c, __m512 d, float* out) {
  const __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
  const __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, 0x44), _mm512_shuffle_f32x4(c, d, 0xEE));
  const __m512 q = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, 0x88), _mm512_shuffle_f32x4(ab, cd, 0xDD));
  const __m512 h = _mm512_add_ps(q, _mm512_permute_ps(q, _MM_SHUFFLE(1, 0, 3, 2)));
  const __m512 one = _mm512_add_ps(h, _mm512_permute_ps(h, _MM_SHUFFLE(2, 3, 0, 1)));
  const __m512i lanes = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  _mm_storeu_ps(out, _mm512_castps512_ps128(_mm512_permutexvar_ps(lanes, one)));
}

template <int MR, int NR>
SLMOPT_AVX512 void tile(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t K, bool accumulate,
                        const float* bias, float* y, int64_t ldy) {
  __m512 acc[MR][NR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    __m512 xv[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) xv[i] = _mm512_loadu_ps(x + i * ldx + k);
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) {
      const __m512 wv = _mm512_loadu_ps(w + j * ldw + k);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) acc[i][j] = _mm512_fmadd_ps(xv[i], wv, acc[i][j]);
    }
  }
  if (k < K) {  // lanes past K keep their value (mask3: unselected lanes come from acc)
    const __mmask16 mask = static_cast<__mmask16>((1u << (K - k)) - 1u);
    __m512 xv[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) xv[i] = _mm512_maskz_loadu_ps(mask, x + i * ldx + k);
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) {
      const __m512 wv = _mm512_maskz_loadu_ps(mask, w + j * ldw + k);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) acc[i][j] = _mm512_mask3_fmadd_ps(xv[i], wv, acc[i][j], mask);
    }
  }
  constexpr int kCount = MR * NR;
  const __m512* flat = &acc[0][0];
  float sums[(kCount + 3) / 4 * 4];
#pragma GCC unroll 8
  for (int g = 0; g < kCount; g += 4)
    fold4(flat[g], flat[std::min(g + 1, kCount - 1)], flat[std::min(g + 2, kCount - 1)],
          flat[std::min(g + 3, kCount - 1)], sums + g);
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) {
      const float sum = sums[i * NR + j];
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

template <size_t... I>
constexpr std::array<std::array<TileFn, kRegCols>, kRegRows> tile_table(std::index_sequence<I...>) {
  return {tile_row<static_cast<int>(I) + 1>(std::make_index_sequence<kRegCols>{})...};
}

// kTiles[mr-1][nr-1]: the full tile and every edge tile.
constexpr auto kTiles = tile_table(std::make_index_sequence<kRegRows>{});

// Blocks of 64 tokens (256 KiB of a 1024-wide chunk) stay in L2 beside the decoded group while each register
// tile's 6 weight rows (24 KiB) stay in L1 across the block's token tiles: ~10 % over sweeping all tokens.
void avx512_dot_tile(const float* x, int64_t ldx, int64_t T, const float* w, int64_t ldw, int64_t N, int64_t K,
                     bool accumulate, const float* bias, float* y, int64_t ldy) {
  constexpr int64_t kTokenBlock = 64;
  for (int64_t tb = 0; tb < T; tb += kTokenBlock) {
    const int64_t te = std::min(T, tb + kTokenBlock);
    for (int64_t n0 = 0; n0 < N; n0 += kRegCols) {
      const int64_t nr = std::min<int64_t>(kRegCols, N - n0);
      for (int64_t t0 = tb; t0 < te; t0 += kRegRows) {
        const int64_t mr = std::min<int64_t>(kRegRows, te - t0);
        kTiles[static_cast<size_t>(mr - 1)][static_cast<size_t>(nr - 1)](
            x + t0 * ldx, ldx, w + n0 * ldw, ldw, K, accumulate, bias ? bias + n0 : nullptr, y + t0 * ldy + n0, ldy);
      }
    }
  }
}

// ---- decoders -------------------------------------------------------------------------------------------

using namespace blocks;

SLMOPT_AVX512 inline __m512i bytes_u32(const uint8_t* p) {
  return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

SLMOPT_AVX512 void decode_f16(const uint8_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * i))));
  for (; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    dst[i] = f16_to_f32(h);
  }
}

SLMOPT_AVX512 void decode_bf16(const uint8_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * i)));
    _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16)));
  }
  for (; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    dst[i] = bf16_to_f32(h);
  }
}

SLMOPT_AVX512 void decode_q8_0(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, y += kQK) {
    const uint8_t* block = src + static_cast<size_t>(b) * sizeof(Q8_0);
    uint16_t dbits;
    std::memcpy(&dbits, block, 2);
    const __m512 d = _mm512_set1_ps(f16_to_f32(dbits));
    for (int h = 0; h < 2; ++h) {
      const __m512i q = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2 + 16 * h)));
      _mm512_storeu_ps(y + 16 * h, _mm512_mul_ps(_mm512_cvtepi32_ps(q), d));
    }
  }
}

SLMOPT_AVX512 void decode_q4_0(const uint8_t* src, float* y, int64_t nb) {
  const __m512i low4 = _mm512_set1_epi32(0xF), eight = _mm512_set1_epi32(8);
  for (int64_t b = 0; b < nb; ++b, y += kQK) {
    const uint8_t* block = src + static_cast<size_t>(b) * sizeof(Q4_0);
    uint16_t dbits;
    std::memcpy(&dbits, block, 2);
    const __m512 d = _mm512_set1_ps(f16_to_f32(dbits));
    const __m512i q = bytes_u32(block + 2);
    const __m512i lo = _mm512_sub_epi32(_mm512_and_si512(q, low4), eight);
    const __m512i hi = _mm512_sub_epi32(_mm512_srli_epi32(q, 4), eight);
    _mm512_storeu_ps(y, _mm512_mul_ps(_mm512_cvtepi32_ps(lo), d));
    _mm512_storeu_ps(y + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(hi), d));
  }
}

// Q6_K: value 128*half + 32*k + l takes its low nibble from ql[64*half + 32*(k%2) + l] (low for k < 2) and its
// top two bits from bits 2k of qh[32*half + l]; value (d*scale) * (q - 32).
SLMOPT_AVX512 void decode_q6_k(const uint8_t* src, float* y, int64_t nb) {
  const __m512i low4 = _mm512_set1_epi32(0xF), three = _mm512_set1_epi32(3), bias = _mm512_set1_epi32(32);
  for (int64_t b = 0; b < nb; ++b, y += kQKK) {
    const auto blk = load_block<Q6_K>(src, b);
    const float d = f16_to_f32(blk.d);
    for (int half = 0; half < 2; ++half)
      for (int k = 0; k < 4; ++k)
        for (int lh = 0; lh < 2; ++lh) {
          const int e = 128 * half + 32 * k + 16 * lh;
          __m512i low = bytes_u32(blk.ql + 64 * half + 32 * (k % 2) + 16 * lh);
          low = k < 2 ? _mm512_and_si512(low, low4) : _mm512_srli_epi32(low, 4);
          const __m128i shift = _mm_cvtsi32_si128(2 * k);
          const __m512i high =
              _mm512_and_si512(_mm512_srl_epi32(bytes_u32(blk.qh + 32 * half + 16 * lh), shift), three);
          const __m512i q = _mm512_sub_epi32(_mm512_or_si512(low, _mm512_slli_epi32(high, 4)), bias);
          const __m512 ds = _mm512_set1_ps(d * static_cast<float>(blk.scales[e / 16]));
          _mm512_storeu_ps(y + e, _mm512_mul_ps(ds, _mm512_cvtepi32_ps(q)));
        }
  }
}

SLMOPT_AVX512 inline __m512 half_scale(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return _mm512_set1_ps(f16_to_f32(bits));
}

// 1 for lanes l whose bit (l + first) of the little-endian 32-bit word at p is set, else 0.
SLMOPT_AVX512 inline __m512i bit_lanes(const uint8_t* p, int first) {
  uint32_t bits;
  std::memcpy(&bits, p, 4);
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  return _mm512_and_si512(_mm512_srlv_epi32(_mm512_set1_epi32(static_cast<int>(bits >> first)), lane),
                          _mm512_set1_epi32(1));
}

// Q4_1 (d*q + m), Q5_0 (d*(q-16)), Q5_1 (d*q + m): nibbles as Q4_0, Q5's fifth bit of value j in bit j of qh.
SLMOPT_AVX512 void decode_q4_1(const uint8_t* src, float* y, int64_t nb) {
  const __m512i low4 = _mm512_set1_epi32(0xF);
  for (int64_t b = 0; b < nb; ++b, y += kQK) {
    const uint8_t* block = src + static_cast<size_t>(b) * sizeof(Q4_1);
    const __m512 d = half_scale(block), m = half_scale(block + 2);
    const __m512i q = bytes_u32(block + 4);
    const __m512 lo = _mm512_cvtepi32_ps(_mm512_and_si512(q, low4));
    const __m512 hi = _mm512_cvtepi32_ps(_mm512_srli_epi32(q, 4));
    _mm512_storeu_ps(y, _mm512_add_ps(_mm512_mul_ps(lo, d), m));
    _mm512_storeu_ps(y + 16, _mm512_add_ps(_mm512_mul_ps(hi, d), m));
  }
}

template <bool kHasMin>
SLMOPT_AVX512 void decode_q5(const uint8_t* src, float* y, int64_t nb) {
  constexpr size_t kBytes = kHasMin ? sizeof(Q5_1) : sizeof(Q5_0);
  constexpr int kQh = kHasMin ? 4 : 2;
  const __m512i low4 = _mm512_set1_epi32(0xF), sixteen = _mm512_set1_epi32(16);
  for (int64_t b = 0; b < nb; ++b, y += kQK) {
    const uint8_t* block = src + static_cast<size_t>(b) * kBytes;
    const __m512 d = half_scale(block);
    const __m512i q = bytes_u32(block + kQh + 4);
    __m512i lo = _mm512_or_si512(_mm512_and_si512(q, low4), _mm512_slli_epi32(bit_lanes(block + kQh, 0), 4));
    __m512i hi = _mm512_or_si512(_mm512_srli_epi32(q, 4), _mm512_slli_epi32(bit_lanes(block + kQh, 16), 4));
    if constexpr (kHasMin) {
      const __m512 m = half_scale(block + 2);
      _mm512_storeu_ps(y, _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(lo), d), m));
      _mm512_storeu_ps(y + 16, _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(hi), d), m));
    } else {
      lo = _mm512_sub_epi32(lo, sixteen);
      hi = _mm512_sub_epi32(hi, sixteen);
      _mm512_storeu_ps(y, _mm512_mul_ps(_mm512_cvtepi32_ps(lo), d));
      _mm512_storeu_ps(y + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(hi), d));
    }
  }
}

// IQ4_NL: d * level[q], the 16 levels held in one register and picked with a permute.
SLMOPT_AVX512 void decode_iq4_nl(const uint8_t* src, float* y, int64_t nb) {
  alignas(64) float levels[16];
  for (int i = 0; i < 16; ++i) levels[i] = static_cast<float>(kIq4nlValues[static_cast<size_t>(i)]);
  const __m512 table = _mm512_load_ps(levels);
  const __m512i low4 = _mm512_set1_epi32(0xF);
  for (int64_t b = 0; b < nb; ++b, y += kQK) {
    const uint8_t* block = src + static_cast<size_t>(b) * sizeof(IQ4_NL);
    const __m512 d = half_scale(block);
    const __m512i q = bytes_u32(block + 2);
    _mm512_storeu_ps(y, _mm512_mul_ps(d, _mm512_permutexvar_ps(_mm512_and_si512(q, low4), table)));
    _mm512_storeu_ps(y + 16, _mm512_mul_ps(d, _mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), table)));
  }
}

// IQ4_XS: IQ4_NL's levels under a 6-bit sub-scale per 32 values, dl = d * (ls - 32).
SLMOPT_AVX512 void decode_iq4_xs(const uint8_t* src, float* y, int64_t nb) {
  alignas(64) float levels[16];
  for (int i = 0; i < 16; ++i) levels[i] = static_cast<float>(kIq4nlValues[static_cast<size_t>(i)]);
  const __m512 table = _mm512_load_ps(levels);
  const __m512i low4 = _mm512_set1_epi32(0xF);
  for (int64_t b = 0; b < nb; ++b) {
    const auto blk = load_block<IQ4_XS>(src, b);
    const float d = f16_to_f32(blk.d);
    for (int s = 0; s < kQKK / 32; ++s, y += 32) {
      const int ls = ((blk.scales_l[s / 2] >> (4 * (s % 2))) & 0xF) | (((blk.scales_h >> (2 * s)) & 3) << 4);
      const __m512 dl = _mm512_set1_ps(d * static_cast<float>(ls - 32));
      const __m512i q = bytes_u32(blk.qs + 16 * s);
      _mm512_storeu_ps(y, _mm512_mul_ps(dl, _mm512_permutexvar_ps(_mm512_and_si512(q, low4), table)));
      _mm512_storeu_ps(y + 16, _mm512_mul_ps(dl, _mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), table)));
    }
  }
}

// Q4_K and Q5_K: sub-block s (32 values) holds the low (s even) or high (s odd) nibbles of qs[32*(s/2) ...];
// Q5_K adds a fifth bit, bit s of qh[l] for value 32*s + l. Value dl*q - ml with dl = d*scale, ml = dmin*min,
// each rounded as the scalar decoder rounds them.
template <typename Block, bool kFifthBit>
SLMOPT_AVX512 void decode_k4(const uint8_t* src, float* y, int64_t nb) {
  const __m512i low4 = _mm512_set1_epi32(0xF), one = _mm512_set1_epi32(1);
  for (int64_t b = 0; b < nb; ++b, y += kQKK) {
    const auto blk = load_block<Block>(src, b);
    const float d = f16_to_f32(blk.d), dmin = f16_to_f32(blk.dmin);
    for (int s = 0; s < kQKK / 32; ++s) {
      uint8_t sc, mn;
      unpack_k4_scale_min(blk.scales, s, sc, mn);
      const __m512 dl = _mm512_set1_ps(d * static_cast<float>(sc));
      const __m512 ml = _mm512_set1_ps(dmin * static_cast<float>(mn));
      for (int h = 0; h < 2; ++h) {
        __m512i q = bytes_u32(blk.qs + 32 * (s / 2) + 16 * h);
        q = (s % 2) ? _mm512_srli_epi32(q, 4) : _mm512_and_si512(q, low4);
        if constexpr (kFifthBit) {
          const __m512i high =
              _mm512_and_si512(_mm512_srl_epi32(bytes_u32(blk.qh + 16 * h), _mm_cvtsi32_si128(s)), one);
          q = _mm512_or_si512(q, _mm512_slli_epi32(high, 4));
        }
        _mm512_storeu_ps(y + 32 * s + 16 * h, _mm512_sub_ps(_mm512_mul_ps(dl, _mm512_cvtepi32_ps(q)), ml));
      }
    }
  }
}
constexpr auto decode_q4_k = decode_k4<Q4_K, false>;
constexpr auto decode_q5_k = decode_k4<Q5_K, true>;

// Q2_K and Q3_K: value 16*s + i of a super-block takes two bits of qs[32*(s/8) + 16*(s%2) + i] at bit
// 2*((s%8)/2); Q3_K's third bit is bit s/2 of hmask[16*(s%2) + i] (clear means q - 4).
SLMOPT_AVX512 inline __m512i two_bits(const uint8_t* qs, int s) {
  const __m128i shift = _mm_cvtsi32_si128(2 * ((s % 8) / 2));
  return _mm512_and_si512(_mm512_srl_epi32(bytes_u32(qs + 32 * (s / 8) + 16 * (s % 2)), shift),
                          _mm512_set1_epi32(3));
}

SLMOPT_AVX512 void decode_q2_k(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, y += kQKK) {
    const auto blk = load_block<Q2_K>(src, b);
    const float d = f16_to_f32(blk.d), dmin = f16_to_f32(blk.dmin);
    for (int s = 0; s < kQKK / 16; ++s) {
      const __m512 dl = _mm512_set1_ps(d * static_cast<float>(blk.scales[s] & 0xF));
      const __m512 ml = _mm512_set1_ps(dmin * static_cast<float>(blk.scales[s] >> 4));
      const __m512 q = _mm512_cvtepi32_ps(two_bits(blk.qs, s));
      _mm512_storeu_ps(y + 16 * s, _mm512_sub_ps(_mm512_mul_ps(dl, q), ml));
    }
  }
}

SLMOPT_AVX512 void decode_q3_k(const uint8_t* src, float* y, int64_t nb) {
  const __m512i one = _mm512_set1_epi32(1), four = _mm512_set1_epi32(4);
  for (int64_t b = 0; b < nb; ++b, y += kQKK) {
    const auto blk = load_block<Q3_K>(src, b);
    const float d = f16_to_f32(blk.d);
    for (int s = 0; s < kQKK / 16; ++s) {
      const __m512 dl =
          _mm512_set1_ps(d * static_cast<float>(static_cast<int>(unpack_q3k_scale(blk.scales, s)) - 32));
      const __m512i high =
          _mm512_and_si512(_mm512_srl_epi32(bytes_u32(blk.hmask + 16 * (s % 2)), _mm_cvtsi32_si128(s / 2)), one);
      // q - 4 where the high bit is clear: q - 4 + 4*high.
      const __m512i q = _mm512_add_epi32(_mm512_sub_epi32(two_bits(blk.qs, s), four), _mm512_slli_epi32(high, 2));
      _mm512_storeu_ps(y + 16 * s, _mm512_mul_ps(dl, _mm512_cvtepi32_ps(q)));
    }
  }
}

#define SLMOPT_IQ_TARGET SLMOPT_AVX512
#include "iquant_row_decoders.h"  // the lattice i-quants, shared with the other SIMD set
#undef SLMOPT_IQ_TARGET

#include "row_decoder_table.h"  // row_decoder and decode_rows over this file's decoders

}  // namespace
}  // namespace simd_avx512

const KernelSet& avx512_set() {
  static const KernelSet set{simd_avx512::avx512_dot_tile, simd_avx512::decode_rows, simd_avx512::kRegCols};
  return set;
}

}  // namespace slmopt::linear_kernels

#else  // not x86-64: cpu_features never selects this set

namespace slmopt::linear_kernels {
const KernelSet& avx512_set() { return portable_set(); }
}  // namespace slmopt::linear_kernels

#endif
