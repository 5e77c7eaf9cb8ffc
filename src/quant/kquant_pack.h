// Packing of per-element K-quant levels into the block layouts of ir/block_structs.h (private to src/quant).
// Levels arrive as one byte per element of a 256-element super-block, already in the type's range.
#pragma once

#include <cstdint>

#include "slmopt/ir/block_structs.h"

namespace slmopt::quant_detail {

// Q2_K / Q3_K low two bits: element e goes to qs[(e/128)*32 + e%32] at bit 2*((e%128)/32).
inline void pack_two_bit_levels(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < blocks::kQKK; j += 128)
    for (int l = 0; l < 32; ++l)
      qs[j / 4 + l] = static_cast<uint8_t>((L[j + l] & 3) | ((L[j + l + 32] & 3) << 2) |
                                           ((L[j + l + 64] & 3) << 4) | ((L[j + l + 96] & 3) << 6));
}

// Q3_K: levels 0..7; bit 2 of element e goes to hmask[e%32] bit e/32, the low two bits as Q2_K.
inline void pack_q3k_levels(const uint8_t* L, uint8_t* hmask, uint8_t* qs) {
  std::memset(hmask, 0, blocks::kQKK / 8);
  uint8_t low[blocks::kQKK];
  for (int e = 0; e < blocks::kQKK; ++e) {
    if (L[e] > 3) hmask[e % 32] = static_cast<uint8_t>(hmask[e % 32] | (1u << (e / 32)));
    low[e] = static_cast<uint8_t>(L[e] & 3);
  }
  pack_two_bit_levels(low, qs);
}

// Q4_K: element e in the low (e%64 < 32) or high nibble of qs[(e/64)*32 + e%32].
inline void pack_q4k_levels(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < blocks::kQKK; j += 64)
    for (int l = 0; l < 32; ++l) qs[j / 2 + l] = static_cast<uint8_t>((L[j + l] & 0xF) | ((L[j + l + 32] & 0xF) << 4));
}

// Q5_K: nibbles as Q4_K, bit 4 of element e in qh[e%32] bit e/32.
inline void pack_q5k_levels(const uint8_t* L, uint8_t* qh, uint8_t* qs) {
  std::memset(qh, 0, blocks::kQKK / 8);
  for (int e = 0; e < blocks::kQKK; ++e)
    if (L[e] > 15) qh[e % 32] = static_cast<uint8_t>(qh[e % 32] | (1u << (e / 32)));
  pack_q4k_levels(L, qs);
}

// Q6_K: within each 128-element half, element l + 32k puts its low nibble in ql[64*half + l + 32*(k%2)]
// (low nibble for k < 2) and its top two bits at bit 2k of qh[32*half + l].
inline void pack_q6k_levels(const uint8_t* L, uint8_t* ql, uint8_t* qh) {
  for (int half = 0; half < 2; ++half) {
    const uint8_t* Lh = L + 128 * half;
    for (int l = 0; l < 32; ++l) {
      ql[64 * half + l] = static_cast<uint8_t>((Lh[l] & 0xF) | ((Lh[l + 64] & 0xF) << 4));
      ql[64 * half + l + 32] = static_cast<uint8_t>((Lh[l + 32] & 0xF) | ((Lh[l + 96] & 0xF) << 4));
      qh[32 * half + l] = static_cast<uint8_t>((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) |
                                               ((Lh[l + 96] >> 4) << 6));
    }
  }
}

}  // namespace slmopt::quant_detail
