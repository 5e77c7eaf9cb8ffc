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
// Decoders (ir/block_formats) and encoders (quant/) share these definitions, so the layout is written once.
// Blocks are read and written with memcpy: row buffers carry no alignment promise.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
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

static_assert(sizeof(Q4_0) == 18 && sizeof(Q4_1) == 20 && sizeof(Q5_0) == 22 && sizeof(Q5_1) == 24);
static_assert(sizeof(Q8_0) == 34 && sizeof(IQ4_NL) == 18);
static_assert(sizeof(Q2_K) == 84 && sizeof(Q3_K) == 110 && sizeof(Q4_K) == 144 && sizeof(Q5_K) == 176);
static_assert(sizeof(Q6_K) == 210);
static_assert(std::is_trivially_copyable_v<Q6_K> && std::is_standard_layout_v<Q6_K>);
static_assert(offsetof(Q6_K, d) == 208 && offsetof(Q3_K, d) == 108 && offsetof(Q2_K, d) == 80);

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
