// The i-quant types (IQ4_XS, IQ3_S, IQ3_XXS, IQ2_S, IQ2_XS, IQ2_XXS, IQ1_M, IQ1_S): layouts, codebooks and
// decoders against llama.cpp's dequantize_row_* on random blocks and on blocks llama.cpp's own encoder wrote.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "expect_helpers.h"
#include "ggml_reference.h"
#include "quant_real_weights.h"
#include "quant_test_data.h"
#include "slmopt/core/error.h"
#include "slmopt/ir/random_weights.h"
#include "slmopt/quant/block_quantize.h"
#include "slmopt/quant/tensor_quantizer.h"
#include "slmopt/core/half.h"
#include "slmopt/ir/block_formats.h"
#include "slmopt/ir/block_structs.h"
#include "slmopt/ir/iquant_grids.h"

namespace slmopt {
namespace {

using testing::expect_same_decode;

const std::vector<DType>& iquant_types() {
  static const std::vector<DType> types = {DType::IQ4_XS, DType::IQ3_S,   DType::IQ3_XXS, DType::IQ2_S,
                                           DType::IQ2_XS, DType::IQ2_XXS, DType::IQ1_M,   DType::IQ1_S};
  return types;
}

TEST(IQuant, StructSizesAndIdsMatchGgml) {
  EXPECT_EQ(sizeof(blocks::IQ4_XS), traits(DType::IQ4_XS).block_bytes);
  EXPECT_EQ(sizeof(blocks::IQ3_S), traits(DType::IQ3_S).block_bytes);
  EXPECT_EQ(sizeof(blocks::IQ3_XXS), traits(DType::IQ3_XXS).block_bytes);
  EXPECT_EQ(sizeof(blocks::IQ2_S), traits(DType::IQ2_S).block_bytes);
  EXPECT_EQ(sizeof(blocks::IQ2_XS), traits(DType::IQ2_XS).block_bytes);
  EXPECT_EQ(sizeof(blocks::IQ2_XXS), traits(DType::IQ2_XXS).block_bytes);
  EXPECT_EQ(sizeof(blocks::IQ1_M), traits(DType::IQ1_M).block_bytes);
  EXPECT_EQ(sizeof(blocks::IQ1_S), traits(DType::IQ1_S).block_bytes);
  // ggml.h's enum ggml_type.
  const std::vector<std::pair<DType, int>> ids = {{DType::IQ2_XXS, 16}, {DType::IQ2_XS, 17}, {DType::IQ3_XXS, 18},
                                                  {DType::IQ1_S, 19},   {DType::IQ3_S, 21},  {DType::IQ2_S, 22},
                                                  {DType::IQ4_XS, 23},  {DType::IQ1_M, 29}};
  for (const auto& [dtype, id] : ids) {
    EXPECT_EQ(traits(dtype).ggml_type, id) << dtype_name(dtype);
    EXPECT_EQ(dtype_from_ggml_type(id), dtype);
    EXPECT_EQ(traits(dtype).block_size, 256);
  }
}

// Facts about the tables that hold by construction, independent of llama.cpp: the sign table adds an even-
// parity bit, IQ2 grid bytes are the magnitudes {8, 25, 43}, IQ3_S grid bytes odd 1..15, IQ3_XXS grid bytes in
// {4, 12, ..., 52, 62}, IQ1 grid bytes in {-1, 0, 1}.
TEST(IQuant, CodebooksHaveTheirDocumentedShape) {
  for (int i = 0; i < 128; ++i) {
    const int parity = __builtin_popcount(static_cast<unsigned>(i)) & 1;
    EXPECT_EQ(blocks::kIq2Signs[static_cast<size_t>(i)], i | (parity << 7)) << i;
  }
  auto check_iq2 = [](const auto& grid) {
    for (const uint64_t e : grid)
      for (int j = 0; j < 8; ++j) {
        const int v = blocks::grid_byte(e, j);
        ASSERT_TRUE(v == 8 || v == 25 || v == 43) << std::hex << e;
      }
  };
  check_iq2(blocks::kIq2xxsGrid);
  check_iq2(blocks::kIq2xsGrid);
  check_iq2(blocks::kIq2sGrid);
  for (const uint32_t e : blocks::kIq3sGrid)
    for (int j = 0; j < 4; ++j) ASSERT_EQ(blocks::grid_byte(e, j) % 2, 1);
  for (const uint32_t e : blocks::kIq3xxsGrid)
    for (int j = 0; j < 4; ++j) {
      const int v = blocks::grid_byte(e, j);
      ASSERT_TRUE(v == 62 || (v % 8 == 4 && v <= 52)) << std::hex << e;
    }
  for (const uint64_t e : blocks::kIq1sGrid)
    for (int j = 0; j < 8; ++j) {
      const int v = static_cast<int8_t>(blocks::grid_byte(e, j));
      ASSERT_TRUE(v >= -1 && v <= 1) << std::hex << e;
    }
}

// Random bytes exercise every index, sign and scale bit; the f16 super-block scale is kept finite.
void randomise_blocks(DType dtype, std::vector<uint8_t>& bytes, std::mt19937& rng) {
  for (auto& byte : bytes) byte = static_cast<uint8_t>(rng());
  const size_t block = traits(dtype).block_bytes;
  for (size_t off = 0; off < bytes.size(); off += block) {
    const uint16_t d = f32_to_f16(std::uniform_real_distribution<float>(-2.0f, 2.0f)(rng));
    if (dtype == DType::IQ1_M) {  // d's four nibbles sit in the top nibble of the four u16 scale words
      for (int k = 0; k < 4; ++k) {
        uint8_t& hi = bytes[off + offsetof(blocks::IQ1_M, scales) + 2 * static_cast<size_t>(k) + 1];
        hi = static_cast<uint8_t>((hi & 0x0F) | (((d >> (4 * k)) & 0xF) << 4));
      }
    } else {
      std::memcpy(&bytes[off], &d, 2);  // every other i-quant starts with d
    }
  }
}

TEST(IQuant, DecodersMatchGgmlBitForBit) {
  SLMOPT_REQUIRE_LLAMA_CPP();
  const int64_t n = 8192;
  const auto x = testing::gaussian_with_outliers(static_cast<size_t>(n), 31);
  const auto importance = testing::activation_importance(static_cast<size_t>(n), 32);
  std::mt19937 rng(33);
  for (const DType dtype : iquant_types()) {
    std::vector<uint8_t> bytes(row_bytes(dtype, n));
    for (int round = 0; round < 4; ++round) {
      randomise_blocks(dtype, bytes, rng);
      expect_same_decode(dtype, bytes, n, "random bytes");
    }
    testing::GgmlLibrary::get().quantize_chunk(dtype, x.data(), bytes.data(), 1, n, importance.data());
    expect_same_decode(dtype, bytes, n, "ggml_quantize_chunk");
  }
}

// Σ importance·(x − x̂)² of slmopt's encoder and of llama.cpp's ggml_quantize_chunk (same importance) over rows.
struct ErrorPair {
  double ours = 0, llama = 0;
};

ErrorPair compare_with_llama(DType dtype, const std::vector<testing::RealMatrix>& mats, bool with_importance) {
  const auto& ggml = testing::GgmlLibrary::get();
  ErrorPair e;
  for (const auto& m : mats) {
    const float* imp = with_importance ? m.importance.data() : nullptr;
    const size_t rb = row_bytes(dtype, m.cols);
    std::vector<uint8_t> ours(rb * static_cast<size_t>(m.rows)), theirs(ours.size());
    ggml.quantize_chunk(dtype, m.values.data(), theirs.data(), m.rows, m.cols, imp);
    for (int64_t r = 0; r < m.rows; ++r) {
      const float* x = m.values.data() + r * m.cols;
      quantize_row(dtype, x, ours.data() + r * rb, m.cols, imp);
      e.ours += quantization_error(dtype, x, ours.data() + r * rb, m.cols, imp);
      e.llama += quantization_error(dtype, x, theirs.data() + r * rb, m.cols, imp);
    }
  }
  return e;
}

// The bar: on real rows of llama-5m-kjv with slmopt's importance matrix, the importance-weighted error
// is no larger than llama.cpp's with the same importance; without importance (the types llama.cpp writes
// without one) the plain error is no larger either.
TEST(IQuant, EncodersNotWorseThanLlamaOnRealWeights) {
  SLMOPT_REQUIRE_LLAMA_CPP();
  const auto mats = testing::real_linear_rows(testing::llama_5m_kjv(), 8);
  for (const DType dtype : iquant_types()) {
    const ErrorPair weighted = compare_with_llama(dtype, mats, true);
    std::printf("%-8s importance-weighted error: slmopt %.6e llama %.6e (%+.2f%%)", std::string(dtype_name(dtype)).c_str(),
                weighted.ours, weighted.llama, 100.0 * (weighted.ours / weighted.llama - 1));
    EXPECT_LE(weighted.ours, weighted.llama) << dtype_name(dtype);
    if (!needs_importance(dtype)) {
      const ErrorPair plain = compare_with_llama(dtype, mats, false);
      std::printf("   plain: %+.2f%%", 100.0 * (plain.ours / plain.llama - 1));
      EXPECT_LE(plain.ours, plain.llama) << dtype_name(dtype);
    }
    std::printf("\n");
  }
}

// Encoding round trip on awkward rows: zeros, a single spike, constant rows; decoded values stay finite and
// zero rows decode to zeros.
TEST(IQuant, EncodersHandleDegenerateRows) {
  const int64_t n = 512;
  std::vector<std::vector<float>> rows = {std::vector<float>(n, 0.0f), std::vector<float>(n, 0.25f),
                                          std::vector<float>(n, 0.0f)};
  rows[2][300] = -3.0f;
  for (const DType dtype : iquant_types()) {
    for (size_t k = 0; k < rows.size(); ++k) {
      std::vector<uint8_t> q(row_bytes(dtype, n));
      std::vector<float> y(static_cast<size_t>(n));
      quantize_row(dtype, rows[k].data(), q.data(), n, nullptr);
      dequantize_row(dtype, q.data(), y.data(), n);
      for (int64_t i = 0; i < n; ++i) ASSERT_TRUE(std::isfinite(y[static_cast<size_t>(i)])) << dtype_name(dtype);
      if (k == 0) {
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(y[static_cast<size_t>(i)], 0.0f) << dtype_name(dtype);
      }
    }
  }
}

TEST(IQuant, LlamaReplicaEncodersAreRefused) {
  std::vector<float> x(256, 0.1f);
  std::vector<uint8_t> q(row_bytes(DType::IQ2_XXS, 256));
  EXPECT_THROW(quantize_row(Encoder::Reference, DType::IQ2_XXS, x.data(), q.data(), 256, nullptr), Error);
  EXPECT_THROW(quantize_row(Encoder::Llama, DType::IQ3_S, x.data(), q.data(), 256, nullptr), Error);
  EXPECT_TRUE(needs_importance(DType::IQ2_XXS) && needs_importance(DType::IQ3_XXS) && needs_importance(DType::IQ1_S));
  EXPECT_FALSE(needs_importance(DType::IQ3_S) || needs_importance(DType::IQ4_XS));
}

// llama.cpp refuses IQ3_XXS and below without an importance matrix (llama-quant.cpp: "this quantization requires
// an imatrix!"); slmopt says so in one line naming a tensor and the options that provide one.
TEST(IQuant, PresetsNeedingImportanceAreRefusedWithoutIt) {
  Config c;
  c.family = "llama";
  c.hidden_size = 256;
  c.intermediate_size = 512;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 4;
  c.head_dim = 64;
  c.vocab_size = 256;
  c.max_position = 64;
  const Model model = random_model(c, DType::F32, 7);
  for (const QuantPreset p : {QuantPreset::IQ2_XXS, QuantPreset::IQ1_S, QuantPreset::IQ3_XXS, QuantPreset::IQ2_M,
                             QuantPreset::IQ3_XS}) {  // IQ3_XS: IQ3_XXS attn_q/attn_k
    try {
      TensorQuantizer q(model, {p, {}, false}, nullptr);
      ADD_FAILURE() << preset_info(p).name << " accepted without an importance matrix";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Usage);
      EXPECT_NE(std::string(e.what()).find("--calib"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("model.layers."), std::string::npos) << e.what();
    }
  }
  for (const QuantPreset p : {QuantPreset::IQ3_S, QuantPreset::IQ3_M, QuantPreset::IQ4_XS})
    EXPECT_NO_THROW(TensorQuantizer(model, {p, {}, false}, nullptr)) << preset_info(p).name;
}

}  // namespace
}  // namespace slmopt
