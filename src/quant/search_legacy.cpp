// slmopt's search encoders for the 32-element types (see search_encoders.h). Symmetric types (Q4_0, Q5_0, Q8_0,
// IQ4_NL) get the exact scale sweep of scale_fit.h and an f16-aware refinement; the types with a stored
// minimum (Q4_1, Q5_1) get the alternating affine fit, refined the same way.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "ggml_compatible.h"
#include "lane_vector.h"
#include "quant_math.h"
#include "scale_fit.h"
#include "search_encoders.h"
#include "search_row_loop.h"
#include "simd_dispatch.h"
#include "slmopt/core/half.h"
#include "slmopt/ir/block_structs.h"

namespace slmopt::quant_detail {

namespace {

using namespace blocks;

// The symmetric search for one block: best f16 scale and level indices.
uint16_t search_symmetric_block(const float* x, const float* w, const LevelGrid& grid, float window_lo,
                                float window_hi, uint8_t* levels) {
  const float scale = fit_symmetric_sweep(x, w, kQK, grid, window_lo, window_hi);
  uint16_t best = f32_to_f16(0.f);
  double best_error = symmetric_assign(x, w, kQK, grid, 0.f, levels);
  refine_symmetric_f16(x, w, kQK, grid, scale, best, levels, best_error);
  return best;
}

// The affine search for one block (Q4_1, Q5_1): best f16 scale and f16 offset with their levels.
void search_affine_block(const float* x, const float* w, int nmax, uint16_t& d_out, uint16_t& m_out,
                         uint8_t* levels) {
  const AffineFit fit = fit_affine(x, w, kQK, nmax, false, 36, -2.5f, 1.0f, 8);
  double best_error = -1;
  uint8_t trial[kQK];
  float s = fit.scale, o = fit.offset;
  for (int iter = 0; iter < 3; ++iter) {
    const uint16_t dh = f32_to_f16(s), mh = f32_to_f16(o);
    const double err = affine_assign(x, w, kQK, nmax, f16_to_f32(dh), f16_to_f32(mh), trial);
    if (best_error >= 0 && !(err < best_error)) break;
    best_error = err;
    d_out = dh;
    m_out = mh;
    std::copy(trial, trial + kQK, levels);
    if (!affine_ls(x, w, kQK, levels, false, s, o)) break;
  }
}

void pack_nibbles(const uint8_t* levels, uint8_t* qs) {
  for (int j = 0; j < kQK / 2; ++j) qs[j] = static_cast<uint8_t>(levels[j] | (levels[j + kQK / 2] << 4));
}

void pack_five_bits(const uint8_t* levels, uint8_t* qs, uint8_t* qh) {
  uint32_t high = 0;
  for (int j = 0; j < kQK; ++j) high |= static_cast<uint32_t>((levels[j] >> 4) & 1) << j;
  for (int j = 0; j < kQK / 2; ++j) qs[j] = static_cast<uint8_t>((levels[j] & 0xF) | ((levels[j + kQK / 2] & 0xF) << 4));
  std::memcpy(qh, &high, 4);
}

void build_q4_0(const float* x, const float* w, Q4_0& b) {
  uint8_t levels[kQK];
  b.d = search_symmetric_block(x, w, LevelGrid::uniform(-8, 7), 5.0f, 9.5f, levels);
  pack_nibbles(levels, b.qs);
}

void build_q5_0(const float* x, const float* w, Q5_0& b) {
  uint8_t levels[kQK];
  b.d = search_symmetric_block(x, w, LevelGrid::uniform(-16, 15), 11.0f, 17.5f, levels);
  pack_five_bits(levels, b.qs, b.qh);
}

void build_q8_0(const float* x, const float* w, Q8_0& b) {
  uint8_t levels[kQK];
  b.d = search_symmetric_block(x, w, LevelGrid::uniform(-128, 127), 110.0f, 129.0f, levels);
  for (int j = 0; j < kQK; ++j) b.qs[j] = static_cast<int8_t>(static_cast<int>(levels[j]) - 128);
}

void build_iq4_nl(const float* x, const float* w, IQ4_NL& b) {
  uint8_t levels[kQK];
  b.d = search_symmetric_block(x, w, LevelGrid::table(kIq4nlValues.data(), 16), 80.0f, 140.0f, levels);
  pack_nibbles(levels, b.qs);
}

void build_q4_1(const float* x, const float* w, Q4_1& b) {
  uint8_t levels[kQK];
  search_affine_block(x, w, 15, b.d, b.m, levels);
  pack_nibbles(levels, b.qs);
}

void build_q5_1(const float* x, const float* w, Q5_1& b) {
  uint8_t levels[kQK];
  search_affine_block(x, w, 31, b.d, b.m, levels);
  pack_five_bits(levels, b.qs, b.qh);
}

// ---- Encoder::Fast: llama.cpp's block, then a cheap polish (see search_kquants.cpp for the K-quants) ----

// Level indices of a stored 32-element block (low nibbles are elements 0..15, high nibbles 16..31).
void unpack_nibbles(const uint8_t* qs, uint8_t* levels) {
  for (int j = 0; j < kQK / 2; ++j) {
    levels[j] = qs[j] & 0xF;
    levels[j + kQK / 2] = static_cast<uint8_t>(qs[j] >> 4);
  }
}

void unpack_five_bits(const uint8_t* qs, const uint8_t* qh, uint8_t* levels) {
  uint32_t high;
  std::memcpy(&high, qh, 4);
  unpack_nibbles(qs, levels);
  for (int j = 0; j < kQK; ++j) levels[j] = static_cast<uint8_t>(levels[j] | (((high >> j) & 1) << 4));
}

// The polish of the uniform symmetric types, in lanes (32 elements = 4 vectors of 8). The errors are compared
// in float with a relative margin, so that whatever the summation order a replacement is a real improvement.
constexpr float kPolishMargin = 1 - 1e-5f;

float hsum(F8 v) {
  float total = 0;
  for (int k = 0; k < kLanes; ++k) total += v[k];
  return total;
}

// Half conversions inline in the per-block loops (a call each was ~5 % of a Q4_0 run): _Float16 conversions,
// which GCC compiles to F16C instructions in the AVX2 copies (simd_dispatch.h) and to libgcc's IEEE conversions
// at the baseline. Same bits as core/half.h for every value that is not NaN, and no NaN reaches an encoder
// (quantize_rows rejects non-finite input; the scales derived here are finite or rejected by the isfinite
// checks below).
inline uint16_t to_f16(float f) {
#if defined(__FLT16_MAX__)
  return std::bit_cast<uint16_t>(static_cast<_Float16>(f));
#else
  return f32_to_f16(f);
#endif
}
inline float from_f16(uint16_t h) {
#if defined(__FLT16_MAX__)
  return static_cast<float>(std::bit_cast<_Float16>(h));
#else
  return f16_to_f32(h);
#endif
}

// Least-squares scale for stored level values, f16-rounded, elements re-rounded (one step: a second one gains
// little and would double the polish's cost). On lanes: xv the block, wv its element weights (null: all ones,
// which multiply exactly, so the result is the same bits as with a vector of ones), lv the level values
// (level − bias) of the stored block, replaced (with d_h) when the polish improves the error.
bool polish_lanes(const F8* xv, const F8* wv, float lo, float hi, uint16_t& d_h, F8* lv) {
  constexpr int kV = kQK / kLanes;
  auto error_of = [&](float d, const F8* levels) {
    F8 e{};
    for (int k = 0; k < kV; ++k) {
      const F8 diff = xv[k] - d * levels[k];
      e += wv ? wv[k] * diff * diff : diff * diff;
    }
    return hsum(e);
  };
  const float best = error_of(from_f16(d_h), lv);
  F8 sxv{}, svv{};
  for (int k = 0; k < kV; ++k) {
    const F8 wl = wv ? wv[k] * lv[k] : lv[k];
    sxv += wl * xv[k];
    svv += wl * lv[k];
  }
  const float den = hsum(svv);
  if (!(den > 0)) return false;
  const uint16_t h = to_f16(hsum(sxv) / den);
  const float d = from_f16(h);
  if (h == d_h || !std::isfinite(d) || d == 0) return false;
  const float inv = 1.0f / d;
  F8 trial[kV];
  for (int k = 0; k < kV; ++k) trial[k] = clamp8(round_even(clamp8(xv[k] * inv, lo - 1, hi + 1)), lo, hi);
  if (!(error_of(d, trial) < best * kPolishMargin)) return false;
  d_h = h;
  std::memcpy(lv, trial, sizeof(trial));
  return true;
}

// polish_lanes on arrays: `v` holds the level values of the stored block and receives the new ones.
bool polish_uniform(const float* x, const float* w, float lo, float hi, uint16_t& d_h, float* v) {
  constexpr int kV = kQK / kLanes;
  F8 xv[kV], wv[kV], lv[kV];
  std::memcpy(xv, x, sizeof(xv));
  std::memcpy(wv, w, sizeof(wv));
  std::memcpy(lv, v, sizeof(lv));
  if (!polish_lanes(xv, wv, lo, hi, d_h, lv)) return false;
  std::memcpy(v, lv, sizeof(lv));
  return true;
}

// Q4_0 and Q8_0 without importance, the bulk of a default quantize: llama.cpp's reference block
// (quantize_row_q4_0_ref / q8_0_ref) and the polish computed in lanes in one pass, so there is no
// pack → unpack → float round trip between them; the bytes are exactly fast_blocks' with polish_q4_0 /
// polish_q8_0 (tests/unit/quantize_encoder_test.cpp compares the two paths).
float signed_absmax8(const F8* xv) {
  F8 amax = abs8(xv[0]);
  for (int k = 1; k < kQK / kLanes; ++k) {
    const F8 a = abs8(xv[k]);
    amax = a > amax ? a : amax;
  }
  float m = 0;
  for (int l = 0; l < kLanes; ++l) m = std::max(m, amax[l]);
  if (m == 0) return 0;  // ggml's +0 even when the block holds −0 (the sign reaches the stored scale)
  // The first element of that magnitude, with its sign (ggml keeps the first on ties).
  for (int k = 0; k < kQK / kLanes; ++k)
    for (int l = 0; l < kLanes; ++l)
      if (std::fabs(xv[k][l]) == m) return xv[k][l];
  return 0;
}

void fast_q4_0_plain(const float* x, uint8_t* dst, int64_t n) {
  constexpr int kV = kQK / kLanes;
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    F8 xv[kV], lv[kV];
    std::memcpy(xv, x, sizeof(xv));
    const float d = signed_absmax8(xv) / -8;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    for (int k = 0; k < kV; ++k) {
      I8 q = __builtin_convertvector(xv[k] * id + 8.5f, I8);  // truncation, as the reference's (int) cast
      q = q > 15 ? I8{} + 15 : q;
      lv[k] = __builtin_convertvector(q, F8) - 8.0f;
    }
    Q4_0 b;
    b.d = to_f16(d);
    polish_lanes(xv, nullptr, -8, 7, b.d, lv);
    for (int h = 0; h < 2; ++h) {
      const I8 lo = __builtin_convertvector(lv[h] + 8.0f, I8), hi = __builtin_convertvector(lv[h + 2] + 8.0f, I8);
      const I8 packed = lo | (hi << 4);
      for (int l = 0; l < kLanes; ++l) b.qs[8 * h + l] = static_cast<uint8_t>(packed[l]);
    }
    std::memcpy(dst + static_cast<size_t>(i) * sizeof(Q4_0), &b, sizeof(Q4_0));
  }
}

// std::round (half away from zero) on lanes: v − trunc(v) is exact for |v| < 2²³ (every value here is ≤ 128).
F8 round_away(F8 v) {
  const F8 t = __builtin_convertvector(__builtin_convertvector(v, I8), F8);
  const F8 frac = v - t;
  return t + (frac >= 0.5f ? 1.f : F8{}) - (frac <= -0.5f ? 1.f : F8{});
}

void fast_q8_0_plain(const float* x, uint8_t* dst, int64_t n) {
  constexpr int kV = kQK / kLanes;
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    F8 xv[kV], lv[kV];
    std::memcpy(xv, x, sizeof(xv));
    F8 amax8 = abs8(xv[0]);
    for (int k = 1; k < kV; ++k) amax8 = abs8(xv[k]) > amax8 ? abs8(xv[k]) : amax8;
    float amax = 0;
    for (int l = 0; l < kLanes; ++l) amax = std::max(amax, amax8[l]);
    const float d = amax / 127;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    for (int k = 0; k < kV; ++k) lv[k] = round_away(xv[k] * id);
    Q8_0 b;
    b.d = to_f16(d);
    polish_lanes(xv, nullptr, -128, 127, b.d, lv);
    for (int k = 0; k < kV; ++k) {
      const I8 q = __builtin_convertvector(lv[k], I8);
      for (int l = 0; l < kLanes; ++l) b.qs[kLanes * k + l] = static_cast<int8_t>(q[l]);
    }
    std::memcpy(dst + static_cast<size_t>(i) * sizeof(Q8_0), &b, sizeof(Q8_0));
  }
}

// Level values (stored index − bias) and back.
void to_values(const uint8_t* levels, int bias, float* v) {
  for (int j = 0; j < kQK; ++j) v[j] = static_cast<float>(static_cast<int>(levels[j]) - bias);
}
void to_levels(const float* v, int bias, uint8_t* levels) {
  for (int j = 0; j < kQK; ++j) levels[j] = static_cast<uint8_t>(static_cast<int>(v[j]) + bias);
}

bool polish_q4_0(const float* x, const float* w, const Q4_0& stored, Q4_0& b) {
  uint8_t levels[kQK];
  float v[kQK];
  unpack_nibbles(stored.qs, levels);
  to_values(levels, 8, v);
  b.d = stored.d;
  if (!polish_uniform(x, w, -8, 7, b.d, v)) return false;
  to_levels(v, 8, levels);
  pack_nibbles(levels, b.qs);
  return true;
}

bool polish_q5_0(const float* x, const float* w, const Q5_0& stored, Q5_0& b) {
  uint8_t levels[kQK];
  float v[kQK];
  unpack_five_bits(stored.qs, stored.qh, levels);
  to_values(levels, 16, v);
  b.d = stored.d;
  if (!polish_uniform(x, w, -16, 15, b.d, v)) return false;
  to_levels(v, 16, levels);
  pack_five_bits(levels, b.qs, b.qh);
  return true;
}

bool polish_q8_0(const float* x, const float* w, const Q8_0& stored, Q8_0& b) {
  float v[kQK];
  for (int j = 0; j < kQK; ++j) v[j] = static_cast<float>(stored.qs[j]);
  b.d = stored.d;
  if (!polish_uniform(x, w, -128, 127, b.d, v)) return false;
  for (int j = 0; j < kQK; ++j) b.qs[j] = static_cast<int8_t>(v[j]);
  return true;
}

bool polish_iq4_nl(const float* x, const float* w, const IQ4_NL& stored, IQ4_NL& b) {
  const LevelGrid grid = LevelGrid::table(kIq4nlValues.data(), 16);
  uint8_t levels[kQK];
  unpack_nibbles(stored.qs, levels);
  double best = 0;
  const float d = f16_to_f32(stored.d);
  for (int i = 0; i < kQK; ++i) {
    const float diff = x[i] - d * grid.value(levels[i]);
    best += static_cast<double>(w[i] * diff * diff);
  }
  uint16_t h = stored.d;
  if (!refine_symmetric_f16(x, w, kQK, grid, symmetric_ls_scale(x, w, kQK, grid, levels), h, levels, best))
    return false;
  b.d = h;
  pack_nibbles(levels, b.qs);
  return true;
}

// Affine types: least squares for (scale, offset) on the stored levels, both stored in f16, re-rounded.
bool polish_affine(const float* x, const float* w, int nmax, uint16_t& d_h, uint16_t& m_h, uint8_t* levels) {
  double best = 0;
  {
    const float d = f16_to_f32(d_h), m = f16_to_f32(m_h);
    for (int i = 0; i < kQK; ++i) {
      const double diff = static_cast<double>(x[i]) - static_cast<double>(d * static_cast<float>(levels[i]) + m);
      best += w[i] * diff * diff;
    }
  }
  uint8_t trial[kQK];
  bool improved = false;
  for (int iter = 0; iter < 2; ++iter) {
    float s, o;
    if (!affine_ls(x, w, kQK, levels, false, s, o)) break;
    const uint16_t dh = f32_to_f16(s), mh = f32_to_f16(o);
    if ((dh == d_h && mh == m_h) || !std::isfinite(f16_to_f32(dh)) || !std::isfinite(f16_to_f32(mh))) break;
    const double e = affine_assign(x, w, kQK, nmax, f16_to_f32(dh), f16_to_f32(mh), trial);
    if (!(e < best)) break;
    best = e;
    d_h = dh;
    m_h = mh;
    std::copy(trial, trial + kQK, levels);
    improved = true;
  }
  return improved;
}

bool polish_q4_1(const float* x, const float* w, const Q4_1& stored, Q4_1& b) {
  uint8_t levels[kQK];
  unpack_nibbles(stored.qs, levels);
  b.d = stored.d;
  b.m = stored.m;
  if (!polish_affine(x, w, 15, b.d, b.m, levels)) return false;
  pack_nibbles(levels, b.qs);
  return true;
}

bool polish_q5_1(const float* x, const float* w, const Q5_1& stored, Q5_1& b) {
  uint8_t levels[kQK];
  unpack_five_bits(stored.qs, stored.qh, levels);
  b.d = stored.d;
  b.m = stored.m;
  if (!polish_affine(x, w, 31, b.d, b.m, levels)) return false;
  pack_five_bits(levels, b.qs, b.qh);
  return true;
}

void search_q4_0_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  improve_blocks<Q4_0, kQK, ggml_chunk_q4_0, rebuilt<Q4_0, build_q4_0>>(DType::Q4_0, x, dst, n, importance);
}
void search_q4_1_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  improve_blocks<Q4_1, kQK, ggml_chunk_q4_1, rebuilt<Q4_1, build_q4_1>>(DType::Q4_1, x, dst, n, importance);
}
void search_q5_0_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  improve_blocks<Q5_0, kQK, ggml_chunk_q5_0, rebuilt<Q5_0, build_q5_0>>(DType::Q5_0, x, dst, n, importance);
}
void search_q5_1_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  improve_blocks<Q5_1, kQK, ggml_chunk_q5_1, rebuilt<Q5_1, build_q5_1>>(DType::Q5_1, x, dst, n, importance);
}
void search_q8_0_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  improve_blocks<Q8_0, kQK, ggml_chunk_q8_0, rebuilt<Q8_0, build_q8_0>>(DType::Q8_0, x, dst, n, importance);
}
void search_iq4_nl_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  improve_blocks<IQ4_NL, kQK, ggml_chunk_iq4_nl, rebuilt<IQ4_NL, build_iq4_nl>>(DType::IQ4_NL, x, dst, n, importance);
}

void fast_q4_0_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  if (!importance) return fast_q4_0_plain(x, dst, n);
  improve_blocks<Q4_0, kQK, ggml_chunk_q4_0, polish_q4_0>(DType::Q4_0, x, dst, n, importance, CandidateCheck::Trust);
}
void fast_q4_1_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  improve_blocks<Q4_1, kQK, ggml_chunk_q4_1, polish_q4_1>(DType::Q4_1, x, dst, n, importance);
}
void fast_q5_0_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  improve_blocks<Q5_0, kQK, ggml_chunk_q5_0, polish_q5_0>(DType::Q5_0, x, dst, n, importance, CandidateCheck::Trust);
}
void fast_q5_1_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  improve_blocks<Q5_1, kQK, ggml_chunk_q5_1, polish_q5_1>(DType::Q5_1, x, dst, n, importance);
}
void fast_q8_0_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  if (!importance) return fast_q8_0_plain(x, dst, n);
  improve_blocks<Q8_0, kQK, ggml_chunk_q8_0, polish_q8_0>(DType::Q8_0, x, dst, n, importance, CandidateCheck::Trust);
}
void fast_iq4_nl_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  improve_blocks<IQ4_NL, kQK, ggml_chunk_iq4_nl, polish_iq4_nl>(DType::IQ4_NL, x, dst, n, importance);
}

}  // namespace

SLMOPT_QUANT_DISPATCH_ROW(search_q4_0)
SLMOPT_QUANT_DISPATCH_ROW(search_q4_1)
SLMOPT_QUANT_DISPATCH_ROW(search_q5_0)
SLMOPT_QUANT_DISPATCH_ROW(search_q5_1)
SLMOPT_QUANT_DISPATCH_ROW(search_q8_0)
SLMOPT_QUANT_DISPATCH_ROW(search_iq4_nl)
SLMOPT_QUANT_DISPATCH_ROW(fast_q4_0)
SLMOPT_QUANT_DISPATCH_ROW(fast_q4_1)
SLMOPT_QUANT_DISPATCH_ROW(fast_q5_0)
SLMOPT_QUANT_DISPATCH_ROW(fast_q5_1)
SLMOPT_QUANT_DISPATCH_ROW(fast_q8_0)
SLMOPT_QUANT_DISPATCH_ROW(fast_iq4_nl)

}  // namespace slmopt::quant_detail
