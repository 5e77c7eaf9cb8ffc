// llama.cpp-compatible encoders for the K-quants (Q2_K .. Q6_K); see ggml_compatible.h for what "compatible"
// promises and why the float expressions keep ggml's order. Each super-block is encoded in two stages, as in
// ggml: float scales (and mins) per sub-block, then those scales quantized against one f16 super-scale, then
// every element re-rounded with the scales it will really be decoded with.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "ggml_compatible.h"
#include "kquant_pack.h"
#include "quant_math.h"
#include "simd_dispatch.h"
#include "slmopt/core/half.h"
#include "slmopt/ir/block_structs.h"

namespace slmopt::quant_detail {
namespace {

using namespace blocks;

float sum_squares(const float* x, int n) {
  float s = 0;
  for (int j = 0; j < n; ++j) s += x[j] * x[j];
  return s;
}

// Re-rounds the elements of a "scale and min" super-block (Q4_K, Q5_K) with the stored scales.
template <typename Block>
void requantize_k4(const Block& b, const float* x, int nmax, uint8_t* L) {
  for (int j = 0; j < kQKK / 32; ++j) {
    uint8_t sc, m;
    unpack_k4_scale_min(b.scales, j, sc, m);
    const float d = f16_to_f32(b.d) * static_cast<float>(sc);
    if (d == 0) continue;
    const float dm = f16_to_f32(b.dmin) * static_cast<float>(m);
    for (int ii = 0; ii < 32; ++ii)
      L[32 * j + ii] = static_cast<uint8_t>(clamp_int(nearest_int((x[32 * j + ii] + dm) / d), 0, nmax));
  }
}

// Stage two of the reference Q4_K / Q5_K encoders: sub-block scales and mins relative to their maxima.
template <typename Block>
void set_k4_scales_by_max(Block& b, const float* scales, const float* mins) {
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < kQKK / 32; ++j) {
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  std::memset(b.scales, 0, sizeof(b.scales));
  for (int j = 0; j < kQKK / 32; ++j) {
    const auto ls = static_cast<uint8_t>(std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_scale * scales[j]))));
    const auto lm = static_cast<uint8_t>(std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_min * mins[j]))));
    pack_k4_scale_min(b.scales, j, ls, lm);
  }
  b.d = f32_to_f16(max_scale / 63.f);
  b.dmin = f32_to_f16(max_min / 63.f);
}

// quantize_row_q4_K_ref / q5_K_ref: make_qkx2 with weights av_x + |x| per 32-element sub-block.
template <typename Block>
void k4_reference_block(const float* x, int nmax, float rmin, float rdelta, int nstep, Block& b, uint8_t* L) {
  float scales[kQKK / 32], mins[kQKK / 32], weights[32];
  uint8_t Laux[32];
  for (int j = 0; j < kQKK / 32; ++j) {
    const float* xs = x + 32 * j;
    const float av_x = std::sqrt(sum_squares(xs, 32) / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
    scales[j] = ggml_make_qkx2(32, nmax, xs, weights, L + 32 * j, &mins[j], Laux, rmin, rdelta, nstep, false);
  }
  set_k4_scales_by_max(b, scales, mins);
  requantize_k4(b, x, nmax, L);
}

// quantize_row_q4_K_impl / q5_K_impl: make_qkx3 per sub-block, then make_qp for the 6-bit scales and mins.
template <typename Block>
void k4_importance_block(const float* x, const float* qw, int nmax, bool clamp_levels, Block& b, uint8_t* L) {
  const float sigma2 = 2 * sum_squares(x, kQKK) / kQKK;
  const float av_x = std::sqrt(sigma2);
  float scales[kQKK / 32], mins[kQKK / 32], sw[kQKK / 32], weights[32];
  uint8_t Laux[32], Ls[kQKK / 32], Lm[kQKK / 32];
  for (int j = 0; j < kQKK / 32; ++j) {
    const float* xs = x + 32 * j;
    for (int l = 0; l < 32; ++l)
      weights[l] = qw ? qw[32 * j + l] * std::sqrt(sigma2 + xs[l] * xs[l]) : av_x + std::fabs(xs[l]);
    float sumw = 0;
    for (int l = 0; l < 32; ++l) sumw += weights[l];
    sw[j] = sumw;
    scales[j] = ggml_make_qkx3(32, nmax, xs, weights, L + 32 * j, &mins[j], Laux, -0.9f, 0.05f, 36, false);
  }
  const float d_block = ggml_make_qp(kQKK / 32, 63, scales, Ls, sw);
  const float m_block = ggml_make_qp(kQKK / 32, 63, mins, Lm, sw);
  std::memset(b.scales, 0, sizeof(b.scales));
  for (int j = 0; j < kQKK / 32; ++j) {
    // Q5_K clamps to 63 before packing, Q4_K packs the raw level: they differ only when make_qp wrapped a
    // negative level, and then ggml's stray high bits are reproduced too.
    const uint8_t ls = clamp_levels ? std::min<uint8_t>(63, Ls[j]) : Ls[j];
    const uint8_t lm = clamp_levels ? std::min<uint8_t>(63, Lm[j]) : Lm[j];
    pack_k4_scale_min(b.scales, j, ls, lm);
  }
  b.d = f32_to_f16(d_block);
  b.dmin = f32_to_f16(m_block);
  requantize_k4(b, x, nmax, L);
}

void encode_q4_k(const float* x, uint8_t* dst, int64_t n, const float* importance, bool reference) {
  for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
    Q4_K b;
    uint8_t L[kQKK];
    if (reference)
      k4_reference_block(x, 15, -1.f, 0.1f, 20, b, L);
    else
      k4_importance_block(x, importance + i * kQKK, 15, false, b, L);
    pack_q4k_levels(L, b.qs);
    store_block(dst, i, b);
  }
}

void encode_q5_k(const float* x, uint8_t* dst, int64_t n, const float* importance, bool reference) {
  for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
    Q5_K b;
    uint8_t L[kQKK];
    if (reference)
      k4_reference_block(x, 31, -0.5f, 0.1f, 15, b, L);
    else
      k4_importance_block(x, importance + i * kQKK, 31, true, b, L);
    pack_q5k_levels(L, b.qh, b.qs);
    store_block(dst, i, b);
  }
}

// Q2_K: 16 sub-blocks of 16, 4-bit scales and mins.
void q2_k_requantize(const Q2_K& b, const float* x, uint8_t* L, float dm, float mm) {
  for (int j = 0; j < kQKK / 16; ++j) {
    const float d = dm * static_cast<float>(b.scales[j] & 0xF);
    if (d == 0) continue;
    const float m = mm * static_cast<float>(b.scales[j] >> 4);
    for (int ii = 0; ii < 16; ++ii)
      L[16 * j + ii] = static_cast<uint8_t>(clamp_int(nearest_int((x[16 * j + ii] + m) / d), 0, 3));
  }
}

void q2_k_reference_block(const float* x, Q2_K& b, uint8_t* L) {
  constexpr float q4scale = 15.f;
  float scales[kQKK / 16], mins[kQKK / 16], weights[16];
  uint8_t Laux[16];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < kQKK / 16; ++j) {
    for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
    scales[j] = ggml_make_qkx2(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  if (max_scale > 0) {
    const float iscale = q4scale / max_scale;
    for (int j = 0; j < kQKK / 16; ++j) b.scales[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
    b.d = f32_to_f16(max_scale / q4scale);
  } else {
    std::memset(b.scales, 0, sizeof(b.scales));
    b.d = f32_to_f16(0.f);
  }
  if (max_min > 0) {
    const float iscale = q4scale / max_min;
    for (int j = 0; j < kQKK / 16; ++j)
      b.scales[j] = static_cast<uint8_t>(b.scales[j] | (nearest_int(iscale * mins[j]) << 4));
    b.dmin = f32_to_f16(max_min / q4scale);
  } else {
    b.dmin = f32_to_f16(0.f);
  }
  q2_k_requantize(b, x, L, f16_to_f32(b.d), f16_to_f32(b.dmin));
}

void q2_k_importance_block(const float* x, const float* qw, Q2_K& b, uint8_t* L) {
  const float sigma2 = sum_squares(x, kQKK) / kQKK;
  float scales[kQKK / 16], mins[kQKK / 16], sw[kQKK / 16] = {}, weight[16];
  uint8_t Laux[16], Ls[kQKK / 16], Lm[kQKK / 16];
  for (int j = 0; j < kQKK / 16; ++j) {
    for (int l = 0; l < 16; ++l) weight[l] = qw[16 * j + l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
    for (int l = 0; l < 16; ++l) sw[j] += weight[l];
    scales[j] = ggml_make_qkx3(16, 3, x + 16 * j, weight, L + 16 * j, &mins[j], Laux, -0.9f, 0.05f, 36, false);
  }
  const float dm = ggml_make_qp(kQKK / 16, 15, scales, Ls, sw);
  const float mm = ggml_make_qp(kQKK / 16, 15, mins, Lm, sw);
  b.d = f32_to_f16(dm);
  b.dmin = f32_to_f16(mm);
  for (int j = 0; j < kQKK / 16; ++j) b.scales[j] = static_cast<uint8_t>(Ls[j] | (Lm[j] << 4));
  q2_k_requantize(b, x, L, f16_to_f32(b.d), f16_to_f32(b.dmin));
}

// Q3_K: 16 sub-blocks of 16, signed 6-bit scales stored biased by 32, levels -4..3 stored biased by 4.
void q3_k_requantize(const Q3_K& b, const float* x, int8_t* L) {
  for (int j = 0; j < kQKK / 16; ++j) {
    const int sc = static_cast<int>(unpack_q3k_scale(b.scales, j)) - 32;
    const float d = f16_to_f32(b.d) * static_cast<float>(sc);
    if (d == 0) continue;
    for (int ii = 0; ii < 16; ++ii)
      L[16 * j + ii] = static_cast<int8_t>(clamp_int(nearest_int(x[16 * j + ii] / d), -4, 3) + 4);
  }
}

void q3_k_reference_block(const float* x, Q3_K& b, int8_t* L) {
  float scales[kQKK / 16];
  for (int j = 0; j < kQKK / 16; ++j) scales[j] = ggml_make_q3(16, 4, x + 16 * j, L + 16 * j);
  const float max_scale = signed_absmax(scales, kQKK / 16);
  std::memset(b.scales, 0, sizeof(b.scales));
  if (max_scale != 0) {
    const float iscale = -32.f / max_scale;
    for (int j = 0; j < kQKK / 16; ++j) {
      const int l = clamp_int(static_cast<int8_t>(nearest_int(iscale * scales[j])), -32, 31) + 32;
      pack_q3k_scale(b.scales, j, static_cast<uint8_t>(l));
    }
    b.d = f32_to_f16(1 / iscale);
  } else {
    b.d = f32_to_f16(0.f);
  }
  q3_k_requantize(b, x, L);
}

void q3_k_importance_block(const float* x, const float* qw, Q3_K& b, int8_t* L) {
  const float sigma2 = 2 * sum_squares(x, kQKK) / kQKK;
  float scales[kQKK / 16], weight[16], sw[kQKK / 16];
  int8_t Ls[kQKK / 16];
  for (int j = 0; j < kQKK / 16; ++j) {
    for (int l = 0; l < 16; ++l) weight[l] = qw[16 * j + l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
    float sumw = 0;
    for (int l = 0; l < 16; ++l) sumw += weight[l];
    sw[j] = sumw;
    scales[j] = ggml_make_qx(16, 4, x + 16 * j, L + 16 * j, weight);
  }
  std::memset(b.scales, 0, sizeof(b.scales));
  const float d_block = ggml_make_qx(kQKK / 16, 32, scales, Ls, sw);
  for (int j = 0; j < kQKK / 16; ++j) pack_q3k_scale(b.scales, j, static_cast<uint8_t>(Ls[j]));
  b.d = f32_to_f16(d_block);
  q3_k_requantize(b, x, L);
}

void encode_q3_k(const float* x, uint8_t* dst, int64_t n, const float* importance, bool reference) {
  for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
    Q3_K b;
    int8_t L[kQKK];
    if (reference)
      q3_k_reference_block(x, b, L);
    else
      q3_k_importance_block(x, importance + i * kQKK, b, L);
    uint8_t levels[kQKK];
    for (int e = 0; e < kQKK; ++e) levels[e] = static_cast<uint8_t>(L[e]);
    pack_q3k_levels(levels, b.hmask, b.qs);
    store_block(dst, i, b);
  }
}

// Q6_K: 16 sub-blocks of 16, int8 scales, levels -32..31 stored biased by 32. The importance variant differs
// only in weighting make_qx by the importance itself.
void q6_k_block(const float* x, const float* qw, Q6_K& b, int8_t* L) {
  float scales[kQKK / 16];
  for (int ib = 0; ib < kQKK / 16; ++ib)
    scales[ib] = ggml_make_qx(16, 32, x + 16 * ib, L + 16 * ib, qw ? qw + 16 * ib : nullptr);
  const float max_scale = signed_absmax(scales, kQKK / 16);
  if (std::fabs(max_scale) < kGroupMaxEps) {
    std::memset(&b, 0, sizeof(b));
    std::fill(L, L + kQKK, int8_t{0});
    return;
  }
  const float iscale = -128.f / max_scale;
  b.d = f32_to_f16(1 / iscale);
  for (int ib = 0; ib < kQKK / 16; ++ib)
    b.scales[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
  for (int j = 0; j < kQKK / 16; ++j) {
    const float d = f16_to_f32(b.d) * static_cast<float>(b.scales[j]);
    if (d == 0) continue;
    for (int ii = 0; ii < 16; ++ii)
      L[16 * j + ii] = static_cast<int8_t>(clamp_int(nearest_int(x[16 * j + ii] / d), -32, 31) + 32);
  }
}

void encode_q6_k(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
    Q6_K b;
    int8_t L[kQKK];
    q6_k_block(x, importance ? importance + i * kQKK : nullptr, b, L);
    uint8_t levels[kQKK];
    for (int e = 0; e < kQKK; ++e) levels[e] = static_cast<uint8_t>(L[e]);
    pack_q6k_levels(levels, b.ql, b.qh);
    store_block(dst, i, b);
  }
}

void encode_q2_k(const float* x, uint8_t* dst, int64_t n, const float* importance, bool reference) {
  for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
    Q2_K b;
    uint8_t L[kQKK];
    if (reference)
      q2_k_reference_block(x, b, L);
    else
      q2_k_importance_block(x, importance + i * kQKK, b, L);
    pack_two_bit_levels(L, b.qs);
    store_block(dst, i, b);
  }
}

}  // namespace

void ggml_reference_q2_k(const float* x, uint8_t* dst, int64_t n) { encode_q2_k(x, dst, n, nullptr, true); }
void ggml_reference_q3_k(const float* x, uint8_t* dst, int64_t n) { encode_q3_k(x, dst, n, nullptr, true); }
void ggml_reference_q4_k(const float* x, uint8_t* dst, int64_t n) { encode_q4_k(x, dst, n, nullptr, true); }
void ggml_reference_q5_k(const float* x, uint8_t* dst, int64_t n) { encode_q5_k(x, dst, n, nullptr, true); }
void ggml_reference_q6_k(const float* x, uint8_t* dst, int64_t n) { encode_q6_k(x, dst, n, nullptr); }

namespace {
void ggml_chunk_q2_k_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  encode_q2_k(x, dst, n, importance, importance == nullptr);
}
void ggml_chunk_q3_k_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  encode_q3_k(x, dst, n, importance, importance == nullptr);
}
void ggml_chunk_q4_k_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  encode_q4_k(x, dst, n, importance, importance == nullptr);
}
void ggml_chunk_q5_k_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  encode_q5_k(x, dst, n, importance, importance == nullptr);
}
void ggml_chunk_q6_k_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  encode_q6_k(x, dst, n, importance);
}

}  // namespace

SLMOPT_QUANT_DISPATCH_ROW(ggml_chunk_q2_k)
SLMOPT_QUANT_DISPATCH_ROW(ggml_chunk_q3_k)
SLMOPT_QUANT_DISPATCH_ROW(ggml_chunk_q4_k)
SLMOPT_QUANT_DISPATCH_ROW(ggml_chunk_q5_k)
SLMOPT_QUANT_DISPATCH_ROW(ggml_chunk_q6_k)

}  // namespace slmopt::quant_detail
