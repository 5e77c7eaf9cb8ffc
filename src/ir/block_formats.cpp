// Decoders for every GGUF block type, bit-identical to ggml's dequantize_row_* (same float operations in the
// same order, f16 conversions from core/half). Each block is copied into its struct first, so rows need no
// alignment; the block layouts are documented in ir/block_structs.h.
#include "slmopt/ir/block_formats.h"

#include <cstring>

#include "slmopt/core/error.h"
#include "slmopt/core/half.h"
#include "slmopt/ir/block_structs.h"
#include "iquant_decoders.h"

namespace slmopt {
namespace {

using namespace blocks;

// The 5th bit of element j sits in bit j of the little-endian 32-bit qh.
int q5_high_bit(const uint8_t* qh, int j) {
  uint32_t bits;
  std::memcpy(&bits, qh, 4);
  return static_cast<int>((bits >> j) & 1u) << 4;
}

// Level of element j of the 32-element types: elements 0-15 in the low nibbles of qs, 16-31 in the high ones;
// the Q5 types add their fifth bit from qh.
int nibble_level(const uint8_t* qs, int j) { return j < kQK / 2 ? qs[j] & 0xF : qs[j - kQK / 2] >> 4; }
int level(const Q4_0& b, int j) { return nibble_level(b.qs, j); }
int level(const Q4_1& b, int j) { return nibble_level(b.qs, j); }
int level(const Q5_0& b, int j) { return nibble_level(b.qs, j) | q5_high_bit(b.qh, j); }
int level(const Q5_1& b, int j) { return nibble_level(b.qs, j) | q5_high_bit(b.qh, j); }

// Q4_0 / Q5_0: d * (level - kBias).
template <typename Block, int kBias>
void decode_symmetric(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const auto b = load_block<Block>(src, i);
    const float d = f16_to_f32(b.d);
    for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(level(b, j) - kBias) * d;
  }
}

// Q4_1 / Q5_1: d * level + m.
template <typename Block>
void decode_with_min(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const auto b = load_block<Block>(src, i);
    const float d = f16_to_f32(b.d);
    const float m = f16_to_f32(b.m);
    for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(level(b, j)) * d + m;
  }
}

void decode_q8_0(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const auto b = load_block<Q8_0>(src, i);
    const float d = f16_to_f32(b.d);
    for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(b.qs[j]) * d;
  }
}

void decode_iq4_nl(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const auto b = load_block<IQ4_NL>(src, i);
    const float d = f16_to_f32(b.d);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = d * static_cast<float>(kIq4nlValues[b.qs[j] & 0xF]);
      y[j + kQK / 2] = d * static_cast<float>(kIq4nlValues[b.qs[j] >> 4]);
    }
  }
}

// Q2_K and Q3_K store element e of a super-block in byte (e/128)*32 + e%32 of qs, at bit 2*((e%128)/32).
int two_bit_quant(const uint8_t* qs, int e) { return (qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3; }

void decode_q2_k(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQKK) {
    const auto b = load_block<Q2_K>(src, i);
    const float d = f16_to_f32(b.d);
    const float dmin = f16_to_f32(b.dmin);
    for (int s = 0; s < kQKK / 16; ++s) {
      const float dl = d * static_cast<float>(b.scales[s] & 0xF);
      const float ml = dmin * static_cast<float>(b.scales[s] >> 4);
      for (int e = 16 * s; e < 16 * s + 16; ++e) y[e] = dl * static_cast<float>(two_bit_quant(b.qs, e)) - ml;
    }
  }
}

void decode_q3_k(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQKK) {
    const auto b = load_block<Q3_K>(src, i);
    const float d = f16_to_f32(b.d);
    for (int s = 0; s < kQKK / 16; ++s) {
      const float dl = d * static_cast<float>(static_cast<int>(unpack_q3k_scale(b.scales, s)) - 32);
      for (int e = 16 * s; e < 16 * s + 16; ++e) {
        const bool high = (b.hmask[e % 32] >> (e / 32)) & 1;
        y[e] = dl * static_cast<float>(two_bit_quant(b.qs, e) - (high ? 0 : 4));
      }
    }
  }
}

// Q4_K and Q5_K store element e in the low (e%64 < 32) or high nibble of qs[(e/64)*32 + e%32].
int nibble_quant(const uint8_t* qs, int e) {
  const uint8_t byte = qs[(e / 64) * 32 + e % 32];
  return (e % 64) < 32 ? byte & 0xF : byte >> 4;
}

// Q4_K and Q5_K: eight 32-element sub-blocks, each with a six-bit scale and min; `level(b, e)` is element e's
// unsigned level (Q5_K adds its fifth bit from qh).
template <typename Block, typename Level>
void decode_k_scale_min(const uint8_t* src, float* y, int64_t nb, Level level) {
  for (int64_t i = 0; i < nb; ++i, y += kQKK) {
    const auto b = load_block<Block>(src, i);
    const float d = f16_to_f32(b.d);
    const float dmin = f16_to_f32(b.dmin);
    for (int s = 0; s < kQKK / 32; ++s) {
      uint8_t sc, mn;
      unpack_k4_scale_min(b.scales, s, sc, mn);
      const float dl = d * static_cast<float>(sc);
      const float ml = dmin * static_cast<float>(mn);
      for (int e = 32 * s; e < 32 * s + 32; ++e) y[e] = dl * static_cast<float>(level(b, e)) - ml;
    }
  }
}

void decode_q4_k(const uint8_t* src, float* y, int64_t nb) {
  decode_k_scale_min<Q4_K>(src, y, nb, [](const Q4_K& b, int e) { return nibble_quant(b.qs, e); });
}

void decode_q5_k(const uint8_t* src, float* y, int64_t nb) {
  decode_k_scale_min<Q5_K>(src, y, nb, [](const Q5_K& b, int e) {
    const int high = ((b.qh[e % 32] >> (e / 32)) & 1) ? 16 : 0;
    return nibble_quant(b.qs, e) + high;
  });
}

// Q6_K: within each 128-element half, element l + 32k (l < 32) keeps its low nibble in ql[64*half + l + 32*(k%2)]
// (low nibble for k < 2, high nibble otherwise) and its top two bits at bit 2k of qh[32*half + l].
void decode_q6_k(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQKK) {
    const auto b = load_block<Q6_K>(src, i);
    const float d = f16_to_f32(b.d);
    for (int e = 0; e < kQKK; ++e) {
      const int half = e / 128, k = (e % 128) / 32, l = e % 32;
      const uint8_t low_byte = b.ql[64 * half + l + 32 * (k % 2)];
      const int low = k < 2 ? low_byte & 0xF : low_byte >> 4;
      const int high = (b.qh[32 * half + l] >> (2 * k)) & 3;
      const int q = (low | (high << 4)) - 32;
      y[e] = d * static_cast<float>(b.scales[e / 16]) * static_cast<float>(q);
    }
  }
}

}  // namespace

void dequantize_row(DType dtype, const uint8_t* src, float* dst, int64_t n) {
  const auto& t = traits(dtype);
  if (n < 0 || n % t.block_size != 0)
    throw_error(ErrorKind::BadInput, "{} rows need a multiple of {} elements, got {}", t.name, t.block_size, n);
  const int64_t nb = n / t.block_size;
  switch (dtype) {
    case DType::F32:
      if (n != 0) std::memcpy(dst, src, static_cast<size_t>(n) * 4);  // an empty row may have null pointers
      return;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = f16_to_f32(h);
      }
      return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = bf16_to_f32(h);
      }
      return;
    case DType::I8:
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(static_cast<int8_t>(src[i]));
      return;
    case DType::I32:
      for (int64_t i = 0; i < n; ++i) {
        int32_t v;
        std::memcpy(&v, src + 4 * i, 4);
        dst[i] = static_cast<float>(v);
      }
      return;
    case DType::I64:
      for (int64_t i = 0; i < n; ++i) {
        int64_t v;
        std::memcpy(&v, src + 8 * i, 8);
        dst[i] = static_cast<float>(v);
      }
      return;
    case DType::Q4_0: return decode_symmetric<Q4_0, 8>(src, dst, nb);
    case DType::Q4_1: return decode_with_min<Q4_1>(src, dst, nb);
    case DType::Q5_0: return decode_symmetric<Q5_0, 16>(src, dst, nb);
    case DType::Q5_1: return decode_with_min<Q5_1>(src, dst, nb);
    case DType::Q8_0: return decode_q8_0(src, dst, nb);
    case DType::Q2_K: return decode_q2_k(src, dst, nb);
    case DType::Q3_K: return decode_q3_k(src, dst, nb);
    case DType::Q4_K: return decode_q4_k(src, dst, nb);
    case DType::Q5_K: return decode_q5_k(src, dst, nb);
    case DType::Q6_K: return decode_q6_k(src, dst, nb);
    case DType::IQ4_NL: return decode_iq4_nl(src, dst, nb);
    case DType::IQ4_XS: return iquant_detail::decode_iq4_xs(src, dst, nb);
    case DType::IQ3_S: return iquant_detail::decode_iq3_s(src, dst, nb);
    case DType::IQ3_XXS: return iquant_detail::decode_iq3_xxs(src, dst, nb);
    case DType::IQ2_S: return iquant_detail::decode_iq2_s(src, dst, nb);
    case DType::IQ2_XS: return iquant_detail::decode_iq2_xs(src, dst, nb);
    case DType::IQ2_XXS: return iquant_detail::decode_iq2_xxs(src, dst, nb);
    case DType::IQ1_M: return iquant_detail::decode_iq1_m(src, dst, nb);
    case DType::IQ1_S: return iquant_detail::decode_iq1_s(src, dst, nb);
  }
  throw_error(ErrorKind::Internal, "dequantize_row: unknown dtype {}", static_cast<int>(dtype));
}

}  // namespace slmopt
