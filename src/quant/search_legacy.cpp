// slmopt's search encoders for the 32-element types (see search_encoders.h). Symmetric types (Q4_0, Q5_0, Q8_0,
// IQ4_NL) get the exact scale sweep of scale_fit.h and an f16-aware refinement; the types with a stored
// minimum (Q4_1, Q5_1) get the alternating affine fit, refined the same way.
#include <algorithm>
#include <cstring>
#include <vector>

#include "ggml_compatible.h"
#include "quant_math.h"
#include "scale_fit.h"
#include "search_encoders.h"
#include "slmopt/core/half.h"
#include "slmopt/ir/block_structs.h"

namespace slmopt::quant_detail {

namespace {

using namespace blocks;

// Element weights of one block: the importance slice, or ones.
const float* block_weights(const float* importance, int64_t offset, float* ones, int n) {
  if (importance) return importance + offset;
  std::fill(ones, ones + n, 1.0f);
  return ones;
}

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

template <typename Block>
void search_blocks(DType dtype, const float* x, uint8_t* dst, int64_t n, const float* importance,
                   void (*llama)(const float*, uint8_t*, int64_t, const float*),
                   void (*build)(const float* x, const float* w, Block& b)) {
  llama(x, dst, n, importance);
  float ones[kQK];
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float* xb = x + i * kQK;
    const float* w = block_weights(importance, i * kQK, ones, kQK);
    Block b;
    build(xb, w, b);
    uint8_t* current = dst + static_cast<size_t>(i) * sizeof(Block);
    keep_better_block(dtype, xb, importance ? w : nullptr, kQK, current, reinterpret_cast<const uint8_t*>(&b),
                      sizeof(Block));
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

}  // namespace

void search_q4_0(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  search_blocks<Q4_0>(DType::Q4_0, x, dst, n, importance, ggml_chunk_q4_0, build_q4_0);
}
void search_q4_1(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  search_blocks<Q4_1>(DType::Q4_1, x, dst, n, importance, ggml_chunk_q4_1, build_q4_1);
}
void search_q5_0(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  search_blocks<Q5_0>(DType::Q5_0, x, dst, n, importance, ggml_chunk_q5_0, build_q5_0);
}
void search_q5_1(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  search_blocks<Q5_1>(DType::Q5_1, x, dst, n, importance, ggml_chunk_q5_1, build_q5_1);
}
void search_q8_0(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  search_blocks<Q8_0>(DType::Q8_0, x, dst, n, importance, ggml_chunk_q8_0, build_q8_0);
}
void search_iq4_nl(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  search_blocks<IQ4_NL>(DType::IQ4_NL, x, dst, n, importance, ggml_chunk_iq4_nl, build_iq4_nl);
}

}  // namespace slmopt::quant_detail
