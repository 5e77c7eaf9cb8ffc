// The lattice i-quant decoders (IQ3_S, IQ3_XXS, IQ2_S, IQ2_XS, IQ2_XXS, IQ1_M, IQ1_S): the one walk over a
// super-block's scales, grid indices and signs, written once for the scalar decoders of ir/block_formats_iquant.cpp
// and the AVX2/AVX-512 row decoders of exec/ (through exec/iquant_row_decoders.h). Not a normal header: the file
// that includes it provides, before the include and in the namespace it wants the decoders in,
//   SLMOPT_IQ_TARGET                               the decoders' target attribute (empty for the scalar set),
//   put_group8(float* y, float scale, uint64_t grid, unsigned signs)
//                                                  y[j] = scale * grid byte j, negated where bit j of signs is set,
//   put_iq1_group8(float* y, float scale, uint64_t grid, float delta)
//                                                  y[j] = scale * (signed grid byte j + delta),
// and the names of <cstring>, ir/block_structs.h (load_block, the block structs, kQKK), ir/iquant_grids.h and
// f16_to_f32. It includes nothing itself, since it is read inside a namespace.
// A lattice group is 8 values, so a SIMD set writes one group per 8-lane vector; the scales are the same scalar
// float expressions for every set, which keeps the sets bit-identical.
#pragma once

// Two IQ3 grid entries of 4 values as one group of 8.
inline uint64_t quad_pair(uint32_t first, uint32_t second) {
  return first | (static_cast<uint64_t>(second) << 32);
}

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

SLMOPT_IQ_TARGET void decode_iq3_s(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<IQ3_S>(src, i);
    const float d = f16_to_f32(b.d);
    for (int s = 0; s < kQKK / 32; ++s) {
      const int nibble = (b.scales[s / 2] >> (4 * (s % 2))) & 0xF;
      const float db = d * static_cast<float>(1 + 2 * nibble);
      const uint8_t* qs = b.qs + 8 * s;
      const int qh = b.qh[s];
      for (int l = 0; l < 4; ++l, y += 8) {
        const int i1 = qs[2 * l] | ((qh << (8 - 2 * l)) & 256);
        const int i2 = qs[2 * l + 1] | ((qh << (7 - 2 * l)) & 256);
        put_group8(y, db, quad_pair(kIq3sGrid[static_cast<size_t>(i1)], kIq3sGrid[static_cast<size_t>(i2)]),
                   b.signs[4 * s + l]);
      }
    }
  }
}

SLMOPT_IQ_TARGET void decode_iq3_xxs(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<IQ3_XXS>(src, i);
    const float d = f16_to_f32(b.d);
    for (int s = 0; s < kQKK / 32; ++s) {
      const uint32_t aux = load_u32(b.qs + kQKK / 4 + 4 * s);
      const float db = d * (0.5f + static_cast<float>(aux >> 28)) * 0.5f;
      const uint8_t* qs = b.qs + 8 * s;
      for (int l = 0; l < 4; ++l, y += 8)
        put_group8(y, db, quad_pair(kIq3xxsGrid[qs[2 * l]], kIq3xxsGrid[qs[2 * l + 1]]),
                   kIq2Signs[(aux >> (7 * l)) & 127]);
    }
  }
}

SLMOPT_IQ_TARGET void decode_iq2_s(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<IQ2_S>(src, i);
    const float d = f16_to_f32(b.d);
    const uint8_t* signs = b.qs + kQKK / 8;
    for (int s = 0; s < kQKK / 32; ++s) {
      const float db[2] = {d * (0.5f + static_cast<float>(b.scales[s] & 0xF)) * 0.25f,
                           d * (0.5f + static_cast<float>(b.scales[s] >> 4)) * 0.25f};
      for (int l = 0; l < 4; ++l, y += 8) {
        const int index = b.qs[4 * s + l] | ((b.qh[s] << (8 - 2 * l)) & 0x300);
        put_group8(y, db[l / 2], kIq2sGrid[static_cast<size_t>(index)], signs[4 * s + l]);
      }
    }
  }
}

SLMOPT_IQ_TARGET void decode_iq2_xs(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<IQ2_XS>(src, i);
    const float d = f16_to_f32(b.d);
    for (int s = 0; s < kQKK / 32; ++s) {
      const float db[2] = {d * (0.5f + static_cast<float>(b.scales[s] & 0xF)) * 0.25f,
                           d * (0.5f + static_cast<float>(b.scales[s] >> 4)) * 0.25f};
      for (int l = 0; l < 4; ++l, y += 8) {
        const uint16_t q = b.qs[4 * s + l];
        put_group8(y, db[l / 2], kIq2xsGrid[q & 511], kIq2Signs[q >> 9]);
      }
    }
  }
}

SLMOPT_IQ_TARGET void decode_iq2_xxs(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<IQ2_XXS>(src, i);
    const float d = f16_to_f32(b.d);
    const auto* bytes = reinterpret_cast<const uint8_t*>(b.qs);
    for (int s = 0; s < kQKK / 32; ++s) {
      const uint8_t* indices = bytes + 8 * s;
      const uint32_t aux = load_u32(bytes + 8 * s + 4);
      const float db = d * (0.5f + static_cast<float>(aux >> 28)) * 0.25f;
      for (int l = 0; l < 4; ++l, y += 8)
        put_group8(y, db, kIq2xxsGrid[indices[l]], kIq2Signs[(aux >> (7 * l)) & 127]);
    }
  }
}

SLMOPT_IQ_TARGET void decode_iq1_m(const uint8_t* src, float* y, int64_t nb) {
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
        put_iq1_group8(y, dl[l / 2], kIq1sGrid[static_cast<size_t>(b.qs[4 * s + l] | (high << 8))],
                       negative ? -kIq1Delta : kIq1Delta);
      }
    }
  }
}

SLMOPT_IQ_TARGET void decode_iq1_s(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<IQ1_S>(src, i);
    const float d = f16_to_f32(b.d);
    for (int s = 0; s < kQKK / 32; ++s) {
      const uint16_t qh = b.qh[s];
      const float dl = d * static_cast<float>(2 * ((qh >> 12) & 7) + 1);
      const float delta = qh & 0x8000 ? -kIq1Delta : kIq1Delta;
      for (int l = 0; l < 4; ++l, y += 8)
        put_iq1_group8(y, dl, kIq1sGrid[static_cast<size_t>(b.qs[4 * s + l] | (((qh >> (3 * l)) & 7) << 8))],
                       delta);
    }
  }
}
