// Bit-level helpers shared by the HF GPTQ/AWQ writer and reader (layouts in include/slmopt/io/hf_gptq.h).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace slmopt::hf_gptq_bits {

// AWQ gemm: nibble k of a word holds output column 8·j + kAwqOrder[k].
inline constexpr std::array<int, 8> kAwqOrder = {0, 2, 4, 6, 1, 3, 5, 7};

// GPTQ: an LSB-first bit stream; value i occupies bits [bits·i, bits·i + bits) of the stream whose word w is
// words[offset + stride·w]. 3-bit values may straddle two words.
inline void put_bits(std::vector<uint32_t>& words, size_t offset, size_t stride, int64_t i, int bits, uint32_t value) {
  const uint64_t bit = static_cast<uint64_t>(i) * static_cast<uint64_t>(bits);
  const size_t w = static_cast<size_t>(bit / 32);
  const int shift = static_cast<int>(bit % 32);
  words[offset + stride * w] |= value << shift;
  if (shift + bits > 32) words[offset + stride * (w + 1)] |= value >> (32 - shift);
}

inline uint32_t get_bits(const std::vector<uint32_t>& words, size_t offset, size_t stride, int64_t i, int bits) {
  const uint64_t bit = static_cast<uint64_t>(i) * static_cast<uint64_t>(bits);
  const size_t w = static_cast<size_t>(bit / 32);
  const int shift = static_cast<int>(bit % 32);
  uint64_t v = words[offset + stride * w] >> shift;
  if (shift + bits > 32) v |= static_cast<uint64_t>(words[offset + stride * (w + 1)]) << (32 - shift);
  return static_cast<uint32_t>(v) & ((1u << bits) - 1);
}

}  // namespace slmopt::hf_gptq_bits
