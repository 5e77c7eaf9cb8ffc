// The inner loops of linear_stored (internal to exec), one set per instruction set: portable C++, AVX2 and
// AVX-512. stored_linear.cpp tiles the work and calls the set kernel_isa() names.
//
// The summation order is part of the contract, shared by every set, so results are the same bits whichever
// set runs, whatever the tiling, thread count or number of tokens:
//   k is cut into chunks of kChunk (the last one shorter). In chunk c, lane j of a 16-lane accumulator sums,
//   with fused multiply-adds in increasing k, x[t][k]·w[n][k] for every k ≡ j (mod 16) of the chunk; lanes
//   are folded by tree(a) = (s[0] + s[2]) + (s[1] + s[3]) with s[i] = (a[i] + a[i+8]) + (a[i+4] + a[i+12]),
//   i.e. halves 16 → 8 → 4 → 2 → 1. Then y = ((tree_0 + tree_1) + tree_2) ... (+ bias[n]).
// 16 interleaved sums keep the rounding error of a 1024-long dot product near that of a 64-long one. The
// chunks let a register tile of 4 tokens (16 KiB) stay in L1 while the weight rows stream from L2 past it,
// and a group's decoded slice (48 rows, 192 KiB) stay in L2 while every token streams past it: measured on
// the 1B shape, 1024 beats 2048 by ~10 % at K = 2048 and ~15 % at K = 5632.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "slmopt/ir/dtype.h"

namespace slmopt::linear_kernels {

inline constexpr int64_t kChunk = 1024;  // a multiple of every block size (32, 256)

// One chunk (K ≤ kChunk values) of y[t*ldy + n] for t < T, n < N: x rows at x + t*ldx, weight rows at
// w + n*ldw. y = tree (accumulate false) or y + tree (true), then + bias[n] when bias is not null (the last
// chunk's call passes it).
using DotTileFn = void (*)(const float* x, int64_t ldx, int64_t T, const float* w, int64_t ldw, int64_t N,
                           int64_t K, bool accumulate, const float* bias, float* y, int64_t ldy);

// Decodes `rows` rows of K elements stored as `dtype` (row r at src + r*row_bytes) into dst (row r at
// dst + r*K), bit-identical to ir/block_formats' dequantize_row. Returns false, writing nothing, for a dtype
// this set has no fast decoder for (the caller then uses dequantize_row).
using DecodeRowsFn = bool (*)(DType dtype, const uint8_t* src, size_t row_bytes, int64_t rows, int64_t K,
                              float* dst);

struct KernelSet {
  DotTileFn dot_tile;
  DecodeRowsFn decode_rows;
  // Weight rows per register tile: the driver hands dot_tile row counts that are multiples of it.
  int64_t reg_cols;
};

const KernelSet& portable_set();
const KernelSet& avx2_set();    // only called when kernel_isa_supported(KernelIsa::Avx2)
const KernelSet& avx512_set();  // only called when kernel_isa_supported(KernelIsa::Avx512)

// One set's decoder of a stored type: `fn` turns one row into floats, given the row's count of units of
// `unit` elements (1 for the plain half types, the block size for block types). fn null: no fast decoder.
struct RowDecoder {
  void (*fn)(const uint8_t* src, float* dst, int64_t units) = nullptr;
  int64_t unit = 1;
};

// The row walk every SIMD set's decode_rows shares.
inline bool decode_rows_with(RowDecoder d, const uint8_t* src, size_t row_bytes, int64_t rows, int64_t K,
                             float* dst) {
  if (d.fn == nullptr) return false;
  for (int64_t r = 0; r < rows; ++r) d.fn(src + static_cast<size_t>(r) * row_bytes, dst + r * K, K / d.unit);
  return true;
}

// Block `index` of a row of Blocks, copied out (the row pointer has no alignment guarantee).
template <typename Block>
Block load_block(const uint8_t* src, int64_t index) {
  Block b;
  std::memcpy(&b, src + static_cast<size_t>(index) * sizeof(Block), sizeof(Block));
  return b;
}

// The portable tree reduction of 16 lanes (shared by the portable set and the tests).
inline float fold16(const float* a) {
  float s8[8], s4[4];
  for (int i = 0; i < 8; ++i) s8[i] = a[i] + a[i + 8];
  for (int i = 0; i < 4; ++i) s4[i] = s8[i] + s8[i + 4];
  const float s20 = s4[0] + s4[2], s21 = s4[1] + s4[3];
  return s20 + s21;
}

}  // namespace slmopt::linear_kernels
