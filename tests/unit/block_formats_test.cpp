// Block decoders (ir/block_formats) against hand-computed blocks and against llama.cpp's dequantize_row_*.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "expect_helpers.h"
#include "ggml_reference.h"
#include "quant_test_data.h"
#include "slmopt/core/error.h"
#include "slmopt/core/half.h"
#include "slmopt/ir/block_formats.h"
#include "slmopt/ir/block_structs.h"
#include "slmopt/quant/block_quantize.h"

namespace slmopt {
namespace {

using testing::all_block_types;
using testing::expect_same_decode;

TEST(BlockFormats, StructSizesMatchDTypeTraits) {
  EXPECT_EQ(sizeof(blocks::Q4_0), traits(DType::Q4_0).block_bytes);
  EXPECT_EQ(sizeof(blocks::Q4_1), traits(DType::Q4_1).block_bytes);
  EXPECT_EQ(sizeof(blocks::Q5_0), traits(DType::Q5_0).block_bytes);
  EXPECT_EQ(sizeof(blocks::Q5_1), traits(DType::Q5_1).block_bytes);
  EXPECT_EQ(sizeof(blocks::Q8_0), traits(DType::Q8_0).block_bytes);
  EXPECT_EQ(sizeof(blocks::Q2_K), traits(DType::Q2_K).block_bytes);
  EXPECT_EQ(sizeof(blocks::Q3_K), traits(DType::Q3_K).block_bytes);
  EXPECT_EQ(sizeof(blocks::Q4_K), traits(DType::Q4_K).block_bytes);
  EXPECT_EQ(sizeof(blocks::Q5_K), traits(DType::Q5_K).block_bytes);
  EXPECT_EQ(sizeof(blocks::Q6_K), traits(DType::Q6_K).block_bytes);
  EXPECT_EQ(sizeof(blocks::IQ4_NL), traits(DType::IQ4_NL).block_bytes);
}

TEST(BlockFormats, Q4_0BlockDecodesByHand) {
  blocks::Q4_0 b;
  b.d = f32_to_f16(0.5f);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float y[32];
  dequantize_row(DType::Q4_0, reinterpret_cast<const uint8_t*>(&b), y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * static_cast<float>(j - 8));
    EXPECT_EQ(y[j + 16], 0.5f * static_cast<float>(7 - j));
  }
}

TEST(BlockFormats, Q5_1BlockDecodesByHand) {
  blocks::Q5_1 b;
  b.d = f32_to_f16(0.25f);
  b.m = f32_to_f16(-1.0f);
  const uint32_t qh = 0x80000001u;  // fifth bit set for elements 0 and 31
  std::memcpy(b.qh, &qh, 4);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(3 | (5 << 4));
  float y[32];
  dequantize_row(DType::Q5_1, reinterpret_cast<const uint8_t*>(&b), y, 32);
  EXPECT_EQ(y[0], 0.25f * 19 - 1.0f);
  EXPECT_EQ(y[1], 0.25f * 3 - 1.0f);
  EXPECT_EQ(y[16], 0.25f * 5 - 1.0f);
  EXPECT_EQ(y[31], 0.25f * 21 - 1.0f);
}

TEST(BlockFormats, Q4_KPackedScalesRoundTrip) {
  uint8_t packed[12] = {};
  for (int j = 0; j < 8; ++j) blocks::pack_k4_scale_min(packed, j, static_cast<uint8_t>(7 * j + 5), static_cast<uint8_t>(63 - 3 * j));
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, mn;
    blocks::unpack_k4_scale_min(packed, j, sc, mn);
    EXPECT_EQ(sc, 7 * j + 5);
    EXPECT_EQ(mn, 63 - 3 * j);
  }
  uint8_t q3[12] = {};
  for (int j = 0; j < 16; ++j) blocks::pack_q3k_scale(q3, j, static_cast<uint8_t>((j * 37) % 64));
  for (int j = 0; j < 16; ++j) EXPECT_EQ(blocks::unpack_q3k_scale(q3, j), (j * 37) % 64);
}

TEST(BlockFormats, Q6_KBlockDecodesByHand) {
  // Element e gets level (e % 64) and sub-block s gets scale s - 8, so y[e] = d * (s - 8) * (e % 64 - 32).
  blocks::Q6_K b{};
  b.d = f32_to_f16(0.125f);
  for (int s = 0; s < 16; ++s) b.scales[s] = static_cast<int8_t>(s - 8);
  for (int e = 0; e < 256; ++e) {
    const int half = e / 128, k = (e % 128) / 32, l = e % 32, q = e % 64;
    uint8_t& low = b.ql[64 * half + l + 32 * (k % 2)];
    low = static_cast<uint8_t>(low | (k < 2 ? (q & 0xF) : (q & 0xF) << 4));
    b.qh[32 * half + l] = static_cast<uint8_t>(b.qh[32 * half + l] | ((q >> 4) << (2 * k)));
  }
  float y[256];
  dequantize_row(DType::Q6_K, reinterpret_cast<const uint8_t*>(&b), y, 256);
  for (int e = 0; e < 256; ++e) EXPECT_EQ(y[e], 0.125f * static_cast<float>(e / 16 - 8) * static_cast<float>(e % 64 - 32)) << e;
}

TEST(BlockFormats, RejectsPartialBlocks) {
  std::vector<uint8_t> bytes(1024);
  std::vector<float> out(300);
  EXPECT_THROW(dequantize_row(DType::Q4_K, bytes.data(), out.data(), 300), Error);
  EXPECT_THROW(dequantize_row(DType::Q8_0, bytes.data(), out.data(), 33), Error);
}

TEST(BlockFormats, DecodeMatchesGgmlForEveryType) {
  SLMOPT_REQUIRE_LLAMA_CPP();
  const int64_t n = 4096;
  const auto x = testing::gaussian_with_outliers(static_cast<size_t>(n), 11);
  const auto importance = testing::activation_importance(static_cast<size_t>(n), 12);
  std::mt19937 rng(13);
  for (const DType dtype : all_block_types()) {
    SCOPED_TRACE(std::string(dtype_name(dtype)));
    std::vector<uint8_t> bytes(row_bytes(dtype, n));
    quantize_row(dtype, x.data(), bytes.data(), n, nullptr);
    expect_same_decode(dtype, bytes, n, "slmopt search");
    quantize_row(dtype, x.data(), bytes.data(), n, importance.data());
    expect_same_decode(dtype, bytes, n, "slmopt search with importance");
    testing::GgmlLibrary::get().quantize_chunk(dtype, x.data(), bytes.data(), 1, n, importance.data());
    expect_same_decode(dtype, bytes, n, "ggml_quantize_chunk");
    // Arbitrary bytes exercise every bit of the layout; keep the f16 fields finite so NaN payloads play no role.
    for (auto& byte : bytes) byte = static_cast<uint8_t>(rng());
    const size_t block = traits(dtype).block_bytes;
    const std::vector<size_t> half_offsets =
        dtype == DType::Q2_K ? std::vector<size_t>{80, 82}
        : dtype == DType::Q3_K ? std::vector<size_t>{108}
        : dtype == DType::Q6_K ? std::vector<size_t>{208}
        : (dtype == DType::Q4_1 || dtype == DType::Q5_1 || dtype == DType::Q4_K || dtype == DType::Q5_K)
            ? std::vector<size_t>{0, 2}
            : std::vector<size_t>{0};
    for (size_t off = 0; off < bytes.size(); off += block)
      for (const size_t h : half_offsets) {
        const uint16_t v = f32_to_f16(std::uniform_real_distribution<float>(-2.0f, 2.0f)(rng));
        std::memcpy(&bytes[off + h], &v, 2);
      }
    expect_same_decode(dtype, bytes, n, "random bytes");
  }
}

}  // namespace
}  // namespace slmopt
