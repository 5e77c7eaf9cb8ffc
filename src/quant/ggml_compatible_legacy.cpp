// llama.cpp-compatible encoders for the 32-element types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL); see
// ggml_compatible.h for what "compatible" promises and why the float expressions keep ggml's order.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "ggml_compatible.h"
#include "kquant_pack.h"
#include "quant_math.h"
#include "simd_dispatch.h"
#include "slmopt/core/half.h"
#include "slmopt/ir/block_structs.h"

namespace slmopt::quant_detail {
namespace {

using namespace blocks;

void min_max(const float* x, int n, float& min, float& max) {
  min = std::numeric_limits<float>::max();
  max = -std::numeric_limits<float>::max();
  for (int j = 0; j < n; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
}

// Packs 32 five-bit levels: low nibbles as Q4_0, fifth bits into the 32-bit little-endian qh.
void pack_q5(const int* q, uint8_t* qs, uint8_t* qh) {
  uint32_t high = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    qs[j] = static_cast<uint8_t>((q[j] & 0x0F) | ((q[j + kQK / 2] & 0x0F) << 4));
    high |= static_cast<uint32_t>((q[j] & 0x10) >> 4) << j;
    high |= static_cast<uint32_t>((q[j + kQK / 2] & 0x10) >> 4) << (j + kQK / 2);
  }
  std::memcpy(qh, &high, 4);
}

void pack_q4(const int* q, uint8_t* qs) {
  for (int j = 0; j < kQK / 2; ++j) qs[j] = static_cast<uint8_t>(q[j] | (q[j + kQK / 2] << 4));
}

// ggml's row-level importance scale: sigma² = mean of x² over the whole row.
float row_sigma2(const float* x, int64_t n) {
  float sum_x2 = 0;
  for (int64_t j = 0; j < n; ++j) sum_x2 += x[j] * x[j];
  return sum_x2 / static_cast<float>(n);
}

void importance_weights(const float* x, const float* qw, float sigma2, float* weight) {
  for (int j = 0; j < kQK; ++j) weight[j] = qw[j] * std::sqrt(sigma2 + x[j] * x[j]);
}

// ggml's best_index_int8: nearest IQ4_NL level by binary search (ties go to the upper level).
int nearest_iq4nl_index(float x) {
  const auto& v = kIq4nlValues;
  if (x <= v[0]) return 0;
  if (x >= v[15]) return 15;
  int ml = 0, mu = 15;
  while (mu - ml > 1) {
    const int mav = (ml + mu) / 2;
    if (x < v[mav])
      mu = mav;
    else
      ml = mav;
  }
  return x - v[mu - 1] < v[mu] - x ? mu - 1 : mu;
}

// quantize_row_iq4_nl_impl for one 32-element block (super-block = block). ntry < 0 is the reference encoder:
// one weighted least-squares scale from the max-based start; ntry > 0 also tries 2*ntry+1 scales and
// re-rounds with the winner.
void iq4_nl_block(const float* xb, const float* qw, int ntry, IQ4_NL& out) {
  float sigma2 = 0;
  for (int j = 0; j < kQK; ++j) sigma2 += xb[j] * xb[j];
  sigma2 *= 2.f / kQK;
  float weight[kQK];
  for (int j = 0; j < kQK; ++j) weight[j] = qw ? qw[j] * std::sqrt(sigma2 + xb[j] * xb[j]) : xb[j] * xb[j];
  const float max = signed_absmax(xb, kQK);
  const float amax = std::fabs(max);
  int L[kQK];
  float scale = 0;
  if (amax < kGroupMaxEps) {
    // ggml leaves stale levels here; level 8 (value 1) times a zero scale decodes to zero all the same.
    std::fill(L, L + kQK, 8);
  } else {
    const float v0 = static_cast<float>(kIq4nlValues[0]);
    float d = ntry > 0 ? -max / v0 : max / v0;
    float id = 1 / d;
    float sumqx = 0, sumq2 = 0;
    for (int j = 0; j < kQK; ++j) {
      L[j] = nearest_iq4nl_index(id * xb[j]);
      const float q = kIq4nlValues[L[j]];
      sumqx += weight[j] * q * xb[j];
      sumq2 += weight[j] * q * q;
    }
    d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
    float best = d * sumqx;
    for (int itry = -ntry; itry <= ntry; ++itry) {
      id = static_cast<float>(itry + kIq4nlValues[0]) / max;
      sumqx = sumq2 = 0;
      for (int j = 0; j < kQK; ++j) {
        const float q = kIq4nlValues[nearest_iq4nl_index(id * xb[j])];
        sumqx += weight[j] * q * xb[j];
        sumq2 += weight[j] * q * q;
      }
      if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
        d = sumqx / sumq2;
        best = d * sumqx;
      }
    }
    scale = d;
  }
  out.d = f32_to_f16(scale);
  if (ntry > 0) {
    const float id = scale != 0 ? 1 / scale : 0;
    for (int j = 0; j < kQK; ++j) L[j] = nearest_iq4nl_index(id * xb[j]);
  }
  pack_q4(L, out.qs);
}

// The 4-bit and 5-bit types differ only in where the fifth bit goes.
void pack_levels(const int* q, Q4_0& b) { pack_q4(q, b.qs); }
void pack_levels(const int* q, Q4_1& b) { pack_q4(q, b.qs); }
void pack_levels(const int* q, Q5_0& b) { pack_q5(q, b.qs, b.qh); }
void pack_levels(const int* q, Q5_1& b) { pack_q5(q, b.qs, b.qh); }

// quantize_row_q4_0_ref / q5_0_ref: the signed absmax maps to level 0, kNmax levels each side of zero.
template <class Block, int kNmax>
void reference_symmetric(const float* x, uint8_t* dst, int64_t n) {
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    const float d = signed_absmax(x, kQK) / -kNmax;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    Block b;
    b.d = f32_to_f16(d);
    int q[kQK];
    for (int j = 0; j < kQK; ++j) q[j] = std::min(2 * kNmax - 1, static_cast<int>(x[j] * id + (kNmax + 0.5f)));
    pack_levels(q, b);
    store_block(dst, i, b);
  }
}

// quantize_row_q4_1_ref / q5_1_ref: kLevels levels from the block minimum to its maximum. ggml clamps only
// Q4_1's level; Q5_1's cannot pass 31 ((max - min) * id rounds to at most 31 + a few ulps), so one clamp
// serves both.
template <class Block, int kLevels>
void reference_asymmetric(const float* x, uint8_t* dst, int64_t n) {
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float min, max;
    min_max(x, kQK, min, max);
    const float d = (max - min) / (kLevels - 1);
    const float id = d != 0 ? 1.0f / d : 0.0f;
    Block b;
    b.d = f32_to_f16(d);
    b.m = f32_to_f16(min);
    int q[kQK];
    for (int j = 0; j < kQK; ++j) q[j] = std::min(kLevels - 1, static_cast<int>((x[j] - min) * id + 0.5f));
    pack_levels(q, b);
    store_block(dst, i, b);
  }
}

// quantize_row_q4_0_impl / q5_0_impl: with an importance matrix, a weighted search for the scale.
template <class Block, int kNmax>
void chunk_symmetric(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  if (!importance) return reference_symmetric<Block, kNmax>(x, dst, n);
  const float sigma2 = row_sigma2(x, n);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK, importance += kQK) {
    float weight[kQK];
    importance_weights(x, importance, sigma2, weight);
    int8_t L[kQK];
    Block b;
    b.d = f32_to_f16(ggml_make_qx(kQK, kNmax, x, L, weight));
    int q[kQK];
    for (int j = 0; j < kQK; ++j) q[j] = L[j];
    pack_levels(q, b);
    store_block(dst, i, b);
  }
}

// quantize_row_q4_1_impl / q5_1_impl: with an importance matrix, a weighted search for scale and minimum.
template <class Block, int kLevels>
void chunk_asymmetric(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  if (!importance) return reference_asymmetric<Block, kLevels>(x, dst, n);
  const float sigma2 = row_sigma2(x, n);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK, importance += kQK) {
    float weight[kQK];
    importance_weights(x, importance, sigma2, weight);
    uint8_t L[kQK], Laux[kQK];
    float min;
    const float d = ggml_make_qkx3(kQK, kLevels - 1, x, weight, L, &min, Laux, -0.9f, 0.05f, 36, false);
    Block b;
    b.d = f32_to_f16(d);
    b.m = f32_to_f16(-min);
    int q[kQK];
    for (int j = 0; j < kQK; ++j) q[j] = L[j];
    pack_levels(q, b);
    store_block(dst, i, b);
  }
}

}  // namespace

void ggml_reference_q4_0(const float* x, uint8_t* dst, int64_t n) { reference_symmetric<Q4_0, 8>(x, dst, n); }
void ggml_reference_q5_0(const float* x, uint8_t* dst, int64_t n) { reference_symmetric<Q5_0, 16>(x, dst, n); }
void ggml_reference_q4_1(const float* x, uint8_t* dst, int64_t n) { reference_asymmetric<Q4_1, 16>(x, dst, n); }
void ggml_reference_q5_1(const float* x, uint8_t* dst, int64_t n) { reference_asymmetric<Q5_1, 32>(x, dst, n); }

void ggml_reference_q8_0(const float* x, uint8_t* dst, int64_t n) {
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float amax = 0;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    Q8_0 b;
    b.d = f32_to_f16(d);
    for (int j = 0; j < kQK; ++j) b.qs[j] = static_cast<int8_t>(std::round(x[j] * id));
    store_block(dst, i, b);
  }
}

void ggml_reference_iq4_nl(const float* x, uint8_t* dst, int64_t n) {
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    IQ4_NL b;
    iq4_nl_block(x, nullptr, -1, b);
    store_block(dst, i, b);
  }
}

namespace {
void ggml_chunk_q4_0_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  chunk_symmetric<Q4_0, 8>(x, dst, n, importance);
}
void ggml_chunk_q5_0_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  chunk_symmetric<Q5_0, 16>(x, dst, n, importance);
}
void ggml_chunk_q4_1_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  chunk_asymmetric<Q4_1, 16>(x, dst, n, importance);
}
void ggml_chunk_q5_1_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  chunk_asymmetric<Q5_1, 32>(x, dst, n, importance);
}

void ggml_chunk_q8_0_body(const float* x, uint8_t* dst, int64_t n, const float* /*importance: ggml ignores it*/) {
  ggml_reference_q8_0(x, dst, n);
}

void ggml_chunk_iq4_nl_body(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    IQ4_NL b;
    iq4_nl_block(x, importance ? importance + i * kQK : nullptr, 7, b);
    store_block(dst, i, b);
  }
}

}  // namespace

SLMOPT_QUANT_DISPATCH_ROW(ggml_chunk_q4_0)
SLMOPT_QUANT_DISPATCH_ROW(ggml_chunk_q5_0)
SLMOPT_QUANT_DISPATCH_ROW(ggml_chunk_q4_1)
SLMOPT_QUANT_DISPATCH_ROW(ggml_chunk_q5_1)
SLMOPT_QUANT_DISPATCH_ROW(ggml_chunk_q8_0)
SLMOPT_QUANT_DISPATCH_ROW(ggml_chunk_iq4_nl)

}  // namespace slmopt::quant_detail
