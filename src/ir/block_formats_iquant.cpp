// Decoders of the i-quants (layouts in ir/block_structs.h, codebooks in ir/iquant_grids.h). To be bit-identical
// with ggml's dequantize_row_*, every value is computed with the same float operations in the same order:
// the group scale first (f16 d times the integer sub-scale expression, as float), then scale * grid value, and
// the sign applied last (an exact negation).
#include <cstring>

#include "iquant_decoders.h"
#include "slmopt/core/half.h"
#include "slmopt/ir/block_structs.h"
#include "slmopt/ir/iquant_grids.h"

namespace slmopt::iquant_detail {
namespace {

using namespace blocks;

uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Eight values of one group: scale * grid byte j, negated where sign bit j is set.
void put_group(float* y, float scale, uint64_t grid, uint8_t signs) {
  for (int j = 0; j < 8; ++j) {
    const float v = scale * static_cast<float>(grid_byte(grid, j));
    y[j] = (signs >> j) & 1 ? -v : v;
  }
}

// Four values of an IQ3 half-group: sign bits `first`..`first+3` of `signs`.
void put_quad(float* y, float scale, uint32_t grid, uint8_t signs, int first) {
  for (int j = 0; j < 4; ++j) {
    const float v = scale * static_cast<float>(grid_byte(grid, j));
    y[j] = (signs >> (first + j)) & 1 ? -v : v;
  }
}

// IQ1: scale * (grid value + delta), grid values signed bytes in {-1, 0, 1}.
void put_iq1_group(float* y, float scale, uint64_t grid, float delta) {
  for (int j = 0; j < 8; ++j)
    y[j] = scale * (static_cast<float>(static_cast<int8_t>(grid_byte(grid, j))) + delta);
}

}  // namespace

void decode_iq4_xs(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<IQ4_XS>(src, i);
    const float d = f16_to_f32(b.d);
    for (int s = 0; s < kQKK / 32; ++s, y += 32) {
      const int ls = ((b.scales_l[s / 2] >> (4 * (s % 2))) & 0xF) | (((b.scales_h >> (2 * s)) & 3) << 4);
      const float dl = d * static_cast<float>(ls - 32);
      const uint8_t* qs = b.qs + 16 * s;
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * static_cast<float>(kIq4nlValues[qs[j] & 0xF]);
        y[j + 16] = dl * static_cast<float>(kIq4nlValues[qs[j] >> 4]);
      }
    }
  }
}

void decode_iq3_s(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<IQ3_S>(src, i);
    const float d = f16_to_f32(b.d);
    for (int s = 0; s < kQKK / 32; ++s) {  // s: 32-element sub-block; its scale nibble is shared per 64
      const int nibble = (b.scales[s / 2] >> (4 * (s % 2))) & 0xF;
      const float db = d * static_cast<float>(1 + 2 * nibble);
      const uint8_t* qs = b.qs + 8 * s;
      const int qh = b.qh[s];
      for (int l = 0; l < 4; ++l, y += 8) {
        const int i1 = qs[2 * l] | ((qh << (8 - 2 * l)) & 256);
        const int i2 = qs[2 * l + 1] | ((qh << (7 - 2 * l)) & 256);
        const uint8_t signs = b.signs[4 * s + l];
        put_quad(y, db, kIq3sGrid[i1], signs, 0);
        put_quad(y + 4, db, kIq3sGrid[i2], signs, 4);
      }
    }
  }
}

void decode_iq3_xxs(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<IQ3_XXS>(src, i);
    const float d = f16_to_f32(b.d);
    for (int s = 0; s < kQKK / 32; ++s) {
      const uint32_t aux = load_u32(b.qs + kQKK / 4 + 4 * s);
      const float db = d * (0.5f + static_cast<float>(aux >> 28)) * 0.5f;
      const uint8_t* qs = b.qs + 8 * s;
      for (int l = 0; l < 4; ++l, y += 8) {
        const uint8_t signs = kIq2Signs[(aux >> (7 * l)) & 127];
        put_quad(y, db, kIq3xxsGrid[qs[2 * l]], signs, 0);
        put_quad(y + 4, db, kIq3xxsGrid[qs[2 * l + 1]], signs, 4);
      }
    }
  }
}

void decode_iq2_s(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<IQ2_S>(src, i);
    const float d = f16_to_f32(b.d);
    const uint8_t* signs = b.qs + kQKK / 8;
    for (int s = 0; s < kQKK / 32; ++s) {
      const float db[2] = {d * (0.5f + static_cast<float>(b.scales[s] & 0xF)) * 0.25f,
                           d * (0.5f + static_cast<float>(b.scales[s] >> 4)) * 0.25f};
      for (int l = 0; l < 4; ++l, y += 8) {
        const int index = b.qs[4 * s + l] | ((b.qh[s] << (8 - 2 * l)) & 0x300);
        put_group(y, db[l / 2], kIq2sGrid[index], signs[4 * s + l]);
      }
    }
  }
}

void decode_iq2_xs(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<IQ2_XS>(src, i);
    const float d = f16_to_f32(b.d);
    for (int s = 0; s < kQKK / 32; ++s) {
      const float db[2] = {d * (0.5f + static_cast<float>(b.scales[s] & 0xF)) * 0.25f,
                           d * (0.5f + static_cast<float>(b.scales[s] >> 4)) * 0.25f};
      for (int l = 0; l < 4; ++l, y += 8) {
        const uint16_t q = b.qs[4 * s + l];
        put_group(y, db[l / 2], kIq2xsGrid[q & 511], kIq2Signs[q >> 9]);
      }
    }
  }
}

void decode_iq2_xxs(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<IQ2_XXS>(src, i);
    const float d = f16_to_f32(b.d);
    const auto* bytes = reinterpret_cast<const uint8_t*>(b.qs);
    for (int s = 0; s < kQKK / 32; ++s) {
      const uint8_t* indices = bytes + 8 * s;
      const uint32_t aux = load_u32(bytes + 8 * s + 4);
      const float db = d * (0.5f + static_cast<float>(aux >> 28)) * 0.25f;
      for (int l = 0; l < 4; ++l, y += 8)
        put_group(y, db, kIq2xxsGrid[indices[l]], kIq2Signs[(aux >> (7 * l)) & 127]);
    }
  }
}

void decode_iq1_m(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<IQ1_M>(src, i);
    uint16_t sc[4];
    std::memcpy(sc, b.scales, sizeof(sc));
    const uint16_t d_bits = static_cast<uint16_t>((sc[0] >> 12) | ((sc[1] >> 8) & 0x00F0) |
                                                  ((sc[2] >> 4) & 0x0F00) | (sc[3] & 0xF000));
    const float d = f16_to_f32(d_bits);
    for (int s = 0; s < kQKK / 32; ++s) {
      const float dl[2] = {d * static_cast<float>(2 * ((sc[s / 2] >> (6 * (s % 2))) & 7) + 1),
                           d * static_cast<float>(2 * ((sc[s / 2] >> (6 * (s % 2) + 3)) & 7) + 1)};
      for (int l = 0; l < 4; ++l, y += 8) {
        const uint8_t qh = b.qh[2 * s + l / 2];
        const int high = l % 2 ? (qh >> 4) & 7 : qh & 7;
        const bool negative = l % 2 ? qh & 0x80 : qh & 0x08;
        put_iq1_group(y, dl[l / 2], kIq1sGrid[b.qs[4 * s + l] | (high << 8)], negative ? -kIq1Delta : kIq1Delta);
      }
    }
  }
}

void decode_iq1_s(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<IQ1_S>(src, i);
    const float d = f16_to_f32(b.d);
    for (int s = 0; s < kQKK / 32; ++s) {
      const uint16_t qh = b.qh[s];
      const float dl = d * static_cast<float>(2 * ((qh >> 12) & 7) + 1);
      const float delta = qh & 0x8000 ? -kIq1Delta : kIq1Delta;
      for (int l = 0; l < 4; ++l, y += 8)
        put_iq1_group(y, dl, kIq1sGrid[b.qs[4 * s + l] | (((qh >> (3 * l)) & 7) << 8)], delta);
    }
  }
}

}  // namespace slmopt::iquant_detail
