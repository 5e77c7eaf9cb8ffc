// Byte layouts of the GGUF block-quantized types, as ggml-common.h defines them. All fields are little-endian,
// structs have no padding (checked below), and `d`, `m`, `dmin` are IEEE half floats stored as raw bits.
//
//   type    elems  bytes  layout (in order)                                        value of element j
//   Q4_0     32     18    d, qs[16]  (j in low nibble of qs[j%16] for j<16, high)  d*(q-8)
//   Q4_1     32     20    d, m, qs[16]                                             d*q + m
//   Q5_0     32     22    d, qh[4] (bit j = 5th bit of element j), qs[16]          d*(q-16)
//   Q5_1     32     24    d, m, qh[4], qs[16]                                      d*q + m
//   Q8_0     32     34    d, int8 qs[32]                                           d*q
//   IQ4_NL   32     18    d, qs[16]  (nibbles as Q4_0)                             d*kIq4nlValues[q]
//   Q2_K    256     84    scales[16] (lo nibble scale, hi nibble min), qs[64], d, dmin
//                                                                   per 16: d*sc*q - dmin*mn, q in 0..3
//   Q3_K    256    110    hmask[32], qs[64], scales[12] (16 six-bit, biased by 32), d
//                                                                   per 16: d*(sc-32)*(q-4), q in 0..7
//   Q4_K    256    144    d, dmin, scales[12] (8 six-bit scales + 8 six-bit mins), qs[128]
//                                                                   per 32: d*sc*q - dmin*mn, q in 0..15
//   Q5_K    256    176    d, dmin, scales[12], qh[32], qs[128]      as Q4_K with q in 0..31
//   Q6_K    256    210    ql[128], qh[64], int8 scales[16], d       per 16: d*sc*(q-32), q in 0..63
//
// The i-quants (256-element super-blocks; grids and sign table in ir/iquant_grids.h; "group" = 8 elements,
// "g4" = 4 elements; s = a 4-bit or 3-bit sub-block scale):
//   IQ4_XS  256    136    d, scales_h (2 high bits per 32), scales_l[4] (low nibbles), qs[128] (nibbles as IQ4_NL
//                         per 32-element sub-block)                d*(ls-32)*kIq4nlValues[q], ls 6-bit
//   IQ3_S   256    110    d, qs[64] (g4 index low 8 bits), qh[8] (9th bits), signs[32] (one bit per element),
//                         scales[4] (a nibble per 64)              d*(1+2s)*grid*sign
//   IQ3_XXS 256     98    d, qs[64] (g4 indices), then per 32: a u32 with 4x7 sign bits and s in bits 28-31
//                                                                  d*(0.5+s)*0.5*grid*sign
//   IQ2_S   256     82    d, qs[32] (group index low 8 bits), signs[32] (a byte per group), qh[8] (2 high index
//                         bits per group), scales[8] (two nibbles per 32)     d*(0.5+s)*0.25*grid*sign
//   IQ2_XS  256     74    d, u16 qs[32] (9-bit index + 7 sign bits per group), scales[8]   as IQ2_S
//   IQ2_XXS 256     66    d, then per 32: u32 of four 8-bit indices, u32 of 4x7 sign bits and s in bits 28-31
//                                                                  d*(0.5+s)*0.25*grid*sign
//   IQ1_S   256     50    d, qs[32] (index low 8 bits), u16 qh[8] per 32: 4x3 high index bits, s (bits 12-14),
//                         delta sign (bit 15)                      d*(2s+1)*(grid+-0.125)
//   IQ1_M   256     56    qs[32], qh[16] (per pair of groups: 3+3 high index bits and a delta sign each),
//                         scales[8] (3-bit s per 16 elements; the f16 d spread over the top nibbles of the four
//                         u16 words)                               d*(2s+1)*(grid+-0.125)
//
// Decoders (ir/block_formats) and encoders (quant/) share these definitions, so the layout is written once.
// Blocks are read and written with memcpy: row buffers carry no alignment promise.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace slmopt::blocks {

inline constexpr int kQK = 32;     // elements per block of the legacy types and IQ4_NL
inline constexpr int kQKK = 256;   // elements per super-block of the K-quants

struct Q4_0 {
  uint16_t d;
  uint8_t qs[kQK / 2];
};

struct Q4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[kQK / 2];
};

struct Q5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};

struct Q5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};

struct Q8_0 {
  uint16_t d;
  int8_t qs[kQK];
};

struct IQ4_NL {
  uint16_t d;
  uint8_t qs[kQK / 2];
};

struct Q2_K {
  uint8_t scales[kQKK / 16];
  uint8_t qs[kQKK / 4];
  uint16_t d;
  uint16_t dmin;
};

struct Q3_K {
  uint8_t hmask[kQKK / 8];
  uint8_t qs[kQKK / 4];
  uint8_t scales[12];
  uint16_t d;
};

struct Q4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[kQKK / 2];
};

struct Q5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[kQKK / 8];
  uint8_t qs[kQKK / 2];
};

struct Q6_K {
  uint8_t ql[kQKK / 2];
  uint8_t qh[kQKK / 4];
  int8_t scales[kQKK / 16];
  uint16_t d;
};

struct IQ4_XS {
  uint16_t d;
  uint16_t scales_h;
  uint8_t scales_l[kQKK / 64];
  uint8_t qs[kQKK / 2];
};

struct IQ3_S {
  uint16_t d;
  uint8_t qs[kQKK / 4];
  uint8_t qh[kQKK / 32];
  uint8_t signs[kQKK / 8];
  uint8_t scales[kQKK / 64];
};

struct IQ3_XXS {
  uint16_t d;
  uint8_t qs[3 * kQKK / 8];
};

struct IQ2_S {
  uint16_t d;
  uint8_t qs[kQKK / 4];  // 32 index bytes, then 32 sign bytes
  uint8_t qh[kQKK / 32];
  uint8_t scales[kQKK / 32];
};

struct IQ2_XS {
  uint16_t d;
  uint16_t qs[kQKK / 8];
  uint8_t scales[kQKK / 32];
};

struct IQ2_XXS {
  uint16_t d;
  uint16_t qs[kQKK / 8];
};

struct IQ1_S {
  uint16_t d;
  uint8_t qs[kQKK / 8];
  uint16_t qh[kQKK / 32];
};

struct IQ1_M {
  uint8_t qs[kQKK / 8];
  uint8_t qh[kQKK / 16];
  uint8_t scales[kQKK / 32];
};

static_assert(sizeof(Q4_0) == 18 && sizeof(Q4_1) == 20 && sizeof(Q5_0) == 22 && sizeof(Q5_1) == 24);
static_assert(sizeof(Q8_0) == 34 && sizeof(IQ4_NL) == 18);
static_assert(sizeof(Q2_K) == 84 && sizeof(Q3_K) == 110 && sizeof(Q4_K) == 144 && sizeof(Q5_K) == 176);
static_assert(sizeof(Q6_K) == 210);
static_assert(sizeof(IQ4_XS) == 136 && sizeof(IQ3_S) == 110 && sizeof(IQ3_XXS) == 98 && sizeof(IQ2_S) == 82);
static_assert(sizeof(IQ2_XS) == 74 && sizeof(IQ2_XXS) == 66 && sizeof(IQ1_S) == 50 && sizeof(IQ1_M) == 56);
static_assert(offsetof(IQ3_S, scales) == 106 && offsetof(IQ2_S, scales) == 74 && offsetof(IQ1_S, qh) == 34);
static_assert(std::is_trivially_copyable_v<Q6_K> && std::is_standard_layout_v<Q6_K>);
static_assert(offsetof(Q6_K, d) == 208 && offsetof(Q3_K, d) == 108 && offsetof(Q2_K, d) == 80);

// Block `index` of a row of Blocks, copied in or out (row buffers carry no alignment promise).
template <typename Block>
Block load_block(const uint8_t* src, int64_t index) {
  Block b;
  std::memcpy(&b, src + static_cast<size_t>(index) * sizeof(Block), sizeof(Block));
  return b;
}

template <typename Block>
void store_block(uint8_t* dst, int64_t index, const Block& b) {
  std::memcpy(dst + static_cast<size_t>(index) * sizeof(Block), &b, sizeof(Block));
}

// The 16 levels of IQ4_NL (ggml's kvalues_iq4nl): a non-uniform grid fitted to weight distributions.
inline constexpr std::array<int8_t, 16> kIq4nlValues = {-127, -104, -83, -65, -49, -35, -22, -10,
                                                        1,    13,   25,  38,  53,  69,  89,  113};

// Q4_K / Q5_K pack 8 six-bit scales and 8 six-bit mins into 12 bytes: sub-blocks 0-3 use the low 6 bits of
// bytes 0-3 (scales) and 4-7 (mins); sub-blocks 4-7 keep their low nibbles in bytes 8-11 and their top two
// bits in the spare high bits of bytes 0-7.
inline void unpack_k4_scale_min(const uint8_t* packed, int j, uint8_t& scale, uint8_t& min) {
  if (j < 4) {
    scale = packed[j] & 63;
    min = packed[j + 4] & 63;
  } else {
    scale = static_cast<uint8_t>((packed[j + 4] & 0xF) | ((packed[j - 4] >> 6) << 4));
    min = static_cast<uint8_t>((packed[j + 4] >> 4) | ((packed[j] >> 6) << 4));
  }
}

// Inverse of unpack_k4_scale_min; `packed` must start zeroed. scale and min must be < 64.
inline void pack_k4_scale_min(uint8_t* packed, int j, uint8_t scale, uint8_t min) {
  if (j < 4) {
    packed[j] = static_cast<uint8_t>(packed[j] | scale);
    packed[j + 4] = static_cast<uint8_t>(packed[j + 4] | min);
  } else {
    packed[j + 4] = static_cast<uint8_t>((scale & 0xF) | ((min & 0xF) << 4));
    packed[j - 4] = static_cast<uint8_t>(packed[j - 4] | ((scale >> 4) << 6));
    packed[j] = static_cast<uint8_t>(packed[j] | ((min >> 4) << 6));
  }
}

// Q3_K packs 16 six-bit scales (stored biased by 32) into 12 bytes: low nibbles of scales 0-7 in the low nibbles
// of bytes 0-7, of scales 8-15 in their high nibbles, and the top two bits of scale j in bits 2*(j/4) of
// byte 8 + j%4.
inline uint8_t unpack_q3k_scale(const uint8_t* packed, int j) {
  const int low = j < 8 ? packed[j] & 0xF : packed[j - 8] >> 4;
  const int high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
  return static_cast<uint8_t>(low | (high << 4));
}

// Inverse of unpack_q3k_scale; `packed` must start zeroed. biased_scale must be < 64.
inline void pack_q3k_scale(uint8_t* packed, int j, uint8_t biased_scale) {
  if (j < 8)
    packed[j] = static_cast<uint8_t>(packed[j] | (biased_scale & 0xF));
  else
    packed[j - 8] = static_cast<uint8_t>(packed[j - 8] | ((biased_scale & 0xF) << 4));
  packed[8 + j % 4] = static_cast<uint8_t>(packed[8 + j % 4] | ((biased_scale >> 4) << (2 * (j / 4))));
}

}  // namespace slmopt::blocks
