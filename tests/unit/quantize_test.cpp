// Encoders (quant/block_quantize) against llama.cpp: the reference encoders byte for byte, the llama-compatible
// encoders against ggml_quantize_chunk byte for byte, and slmopt's default search never worse than llama.cpp's
// quantizer on the error it minimises.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "ggml_reference.h"
#include "quant_real_weights.h"
#include "quant_test_data.h"
#include "slmopt/core/error.h"
#include "slmopt/core/parallel.h"
#include "slmopt/exec/cpu_features.h"
#include "slmopt/ir/block_formats.h"
#include "slmopt/quant/block_quantize.h"

namespace slmopt {
namespace {

using testing::all_block_types;

// Index of the first differing byte, or -1.
int64_t first_difference(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    if (a[i] != b[i]) return static_cast<int64_t>(i);
  return a.size() == b.size() ? -1 : static_cast<int64_t>(std::min(a.size(), b.size()));
}

// The encoders' hot loops exist twice (src/quant/simd_dispatch.h): at the build's baseline ISA and for AVX2.
// Both copies write the same bytes for every type, encoder, and with or without importance.
TEST(Quantize, BaselineAndAvx2CopiesWriteTheSameBytes) {
  if (!kernel_isa_supported(KernelIsa::Avx2)) GTEST_SKIP() << "no AVX2 on this CPU";
  struct Restore {
    ~Restore() { set_kernel_isa(std::nullopt); }
  } restore;
  const int64_t n = 2048;
  const auto x = testing::gaussian_with_outliers(static_cast<size_t>(n), 7);
  const auto importance = testing::activation_importance(static_cast<size_t>(n), 8);
  std::vector<uint8_t> baseline, avx2;
  for (const DType dtype : all_block_types())
    for (const Encoder encoder : {Encoder::Fast, Encoder::Search, Encoder::Llama})
      for (const float* imp : {static_cast<const float*>(nullptr), importance.data()}) {
        baseline.assign(row_bytes(dtype, n), 0);
        avx2.assign(row_bytes(dtype, n), 0);
        set_kernel_isa(KernelIsa::Portable);
        quantize_row(encoder, dtype, x.data(), baseline.data(), n, imp);
        set_kernel_isa(KernelIsa::Avx2);
        quantize_row(encoder, dtype, x.data(), avx2.data(), n, imp);
        EXPECT_EQ(first_difference(baseline, avx2), -1)
            << dtype_name(dtype) << " " << encoder_name(encoder) << (imp ? " with" : " without") << " importance";
      }
}

TEST(Quantize, ReferenceEncoderMatchesGgmlByteForByte) {
  SLMOPT_REQUIRE_LLAMA_CPP();
  const auto& ggml = testing::GgmlLibrary::get();
  for (const uint32_t seed : {1u, 2u, 3u}) {
    const int64_t n = 8192;
    const auto x = testing::gaussian_with_outliers(static_cast<size_t>(n), seed, seed == 3 ? 1.0f : 0.02f);
    for (const DType dtype : all_block_types()) {
      std::vector<uint8_t> ours(row_bytes(dtype, n)), theirs(row_bytes(dtype, n));
      quantize_row(Encoder::Reference, dtype, x.data(), ours.data(), n, nullptr);
      ggml.quantize_row_reference(dtype, x.data(), theirs.data(), n);
      const int64_t diff = first_difference(ours, theirs);
      EXPECT_EQ(diff, -1) << dtype_name(dtype) << " seed " << seed << ": first difference at byte " << diff
                          << " (block " << diff / static_cast<int64_t>(traits(dtype).block_bytes) << ")";
    }
  }
}

// The same on real rows (llama-5m-kjv) with the real importance of their input columns.
TEST(Quantize, EncodersMatchGgmlOnRealWeights) {
  SLMOPT_REQUIRE_LLAMA_CPP();
  const auto& ggml = testing::GgmlLibrary::get();
  for (const auto& m : testing::real_linear_rows(testing::llama_5m_kjv(), 8)) {
    for (const DType dtype : all_block_types()) {
      const size_t rb = row_bytes(dtype, m.cols);
      std::vector<uint8_t> ours(rb * static_cast<size_t>(m.rows)), theirs(ours.size());
      for (int64_t r = 0; r < m.rows; ++r)
        quantize_row(Encoder::Reference, dtype, m.values.data() + r * m.cols, ours.data() + r * rb, m.cols, nullptr);
      ggml.quantize_row_reference(dtype, m.values.data(), theirs.data(), m.rows * m.cols);
      EXPECT_EQ(first_difference(ours, theirs), -1) << m.name << " " << dtype_name(dtype) << " reference";
      for (int64_t r = 0; r < m.rows; ++r)
        quantize_row(Encoder::Llama, dtype, m.values.data() + r * m.cols, ours.data() + r * rb, m.cols,
                     m.importance.data());
      ggml.quantize_chunk(dtype, m.values.data(), theirs.data(), m.rows, m.cols, m.importance.data());
      EXPECT_EQ(first_difference(ours, theirs), -1) << m.name << " " << dtype_name(dtype) << " with importance";
    }
  }
}

TEST(Quantize, LlamaEncoderMatchesGgmlQuantizeChunk) {
  SLMOPT_REQUIRE_LLAMA_CPP();
  const auto& ggml = testing::GgmlLibrary::get();
  const int64_t rows = 8, cols = 1024;
  const auto x = testing::gaussian_with_outliers(static_cast<size_t>(rows * cols), 21);
  const auto importance = testing::activation_importance(static_cast<size_t>(cols), 22);
  for (const DType dtype : all_block_types()) {
    for (const float* imp : {static_cast<const float*>(nullptr), importance.data()}) {
      const size_t rb = row_bytes(dtype, cols);
      std::vector<uint8_t> ours(rb * rows), theirs(rb * rows);
      for (int64_t r = 0; r < rows; ++r)
        quantize_row(Encoder::Llama, dtype, x.data() + r * cols, ours.data() + r * rb, cols, imp);
      ggml.quantize_chunk(dtype, x.data(), theirs.data(), rows, cols, imp);
      const int64_t diff = first_difference(ours, theirs);
      EXPECT_EQ(diff, -1) << dtype_name(dtype) << (imp ? " with" : " without") << " importance: first difference at byte "
                          << diff << " (block " << diff / static_cast<int64_t>(traits(dtype).block_bytes) << ")";
    }
  }
}

}  // namespace
}  // namespace slmopt

namespace slmopt {
namespace {

struct ErrorPair {
  double ours = 0, llama = 0;
};

// Σ error of one of slmopt's encoders and of llama.cpp's (ggml_quantize_chunk, or quantize_row_<type>_ref when
// `llama_reference`) over the rows of every matrix.
ErrorPair compare_errors(DType dtype, const std::vector<testing::RealMatrix>& mats, bool with_importance,
                         Encoder encoder = Encoder::Search, bool llama_reference = false) {
  const auto& ggml = testing::GgmlLibrary::get();
  ErrorPair e;
  for (const auto& m : mats) {
    if (m.cols % traits(dtype).block_size != 0) continue;
    const float* imp = with_importance ? m.importance.data() : nullptr;
    const size_t rb = row_bytes(dtype, m.cols);
    std::vector<uint8_t> ours(rb * static_cast<size_t>(m.rows)), theirs(rb * static_cast<size_t>(m.rows));
    if (llama_reference)
      ggml.quantize_row_reference(dtype, m.values.data(), theirs.data(), m.rows * m.cols);
    else
      ggml.quantize_chunk(dtype, m.values.data(), theirs.data(), m.rows, m.cols, imp);
    for (int64_t r = 0; r < m.rows; ++r) {
      const float* x = m.values.data() + r * m.cols;
      quantize_row(encoder, dtype, x, ours.data() + r * rb, m.cols, imp);
      e.ours += quantization_error(dtype, x, ours.data() + r * rb, m.cols, imp);
      e.llama += quantization_error(dtype, x, theirs.data() + r * rb, m.cols, imp);
    }
  }
  return e;
}

TEST(Quantize, SearchNotWorseThanLlamaOnRealWeights) {
  SLMOPT_REQUIRE_LLAMA_CPP();
  const auto mats = testing::real_linear_rows(testing::llama_5m_kjv(), 32);
  ASSERT_GE(mats.size(), 29u);
  for (const DType dtype : all_block_types()) {
    const ErrorPair plain = compare_errors(dtype, mats, false);
    const ErrorPair weighted = compare_errors(dtype, mats, true);
    std::printf("%-7s plain: slmopt %.6e llama %.6e (%.2f%%)   importance: slmopt %.6e llama %.6e (%.2f%%)\n",
                std::string(dtype_name(dtype)).c_str(), plain.ours, plain.llama,
                100.0 * (plain.ours / plain.llama - 1), weighted.ours, weighted.llama,
                100.0 * (weighted.ours / weighted.llama - 1));
    EXPECT_LE(plain.ours, plain.llama) << dtype_name(dtype);
    EXPECT_LE(weighted.ours, weighted.llama) << dtype_name(dtype);
  }
}

// The default (fast) encoder on the same real rows: its plain error ≤ llama.cpp's reference encoder's and
// ggml_quantize_chunk's, its importance-weighted error ≤ ggml_quantize_chunk's with the same importance, per type.
TEST(Quantize, FastNotWorseThanLlamaOnRealWeights) {
  SLMOPT_REQUIRE_LLAMA_CPP();
  const auto mats = testing::real_linear_rows(testing::llama_5m_kjv(), 32);
  ASSERT_GE(mats.size(), 29u);
  for (const DType dtype : all_block_types()) {
    const ErrorPair reference = compare_errors(dtype, mats, false, Encoder::Fast, true);
    const ErrorPair plain = compare_errors(dtype, mats, false, Encoder::Fast);
    const ErrorPair weighted = compare_errors(dtype, mats, true, Encoder::Fast);
    std::printf("%-7s fast vs ref: %.2f%%   vs chunk: %.2f%%   with importance: %.2f%%\n",
                std::string(dtype_name(dtype)).c_str(), 100.0 * (reference.ours / reference.llama - 1),
                100.0 * (plain.ours / plain.llama - 1), 100.0 * (weighted.ours / weighted.llama - 1));
    EXPECT_LE(reference.ours, reference.llama) << dtype_name(dtype);
    EXPECT_LE(plain.ours, plain.llama) << dtype_name(dtype);
    EXPECT_LE(weighted.ours, weighted.llama) << dtype_name(dtype);
  }
}

}  // namespace
}  // namespace slmopt

namespace slmopt {
namespace {

// Relative RMS error sqrt(Σ(x − x̂)² / Σx²) of slmopt's search on Gaussian rows with outliers stays below a
// per-type bound (about 15% above what the encoders reach today, so a regression in any search shows).
TEST(Quantize, ErrorBoundsOnGaussianRowsWithOutliers) {
  const int64_t rows = 16, cols = 4096;
  const auto x = testing::gaussian_with_outliers(static_cast<size_t>(rows * cols), 31);
  double energy = 0;
  for (float v : x) energy += static_cast<double>(v) * v;
  const std::vector<std::pair<DType, double>> bounds = {
      {DType::Q4_0, 0.120}, {DType::Q4_1, 0.085}, {DType::Q5_0, 0.060}, {DType::Q5_1, 0.041},
      {DType::Q8_0, 0.007}, {DType::Q2_K, 0.300}, {DType::Q3_K, 0.190}, {DType::Q4_K, 0.085},
      {DType::Q5_K, 0.042}, {DType::Q6_K, 0.023}, {DType::IQ4_NL, 0.100}};
  for (const auto& [dtype, bound] : bounds) {
    double err = 0;
    std::vector<uint8_t> q(row_bytes(dtype, cols));
    for (int64_t r = 0; r < rows; ++r) {
      quantize_row(Encoder::Search, dtype, x.data() + r * cols, q.data(), cols, nullptr);
      err += quantization_error(dtype, x.data() + r * cols, q.data(), cols, nullptr);
    }
    EXPECT_LT(std::sqrt(err / energy), bound) << dtype_name(dtype);
  }
}

TEST(Quantize, SearchNotWorseThanLlamaOnRandomRows) {
  SLMOPT_REQUIRE_LLAMA_CPP();
  std::vector<testing::RealMatrix> mats;
  for (const uint32_t seed : {41u, 42u}) {
    testing::RealMatrix m;
    m.name = "random " + std::to_string(seed);
    m.rows = 8;
    m.cols = 2048;
    m.values = testing::gaussian_with_outliers(static_cast<size_t>(m.rows * m.cols), seed, seed == 42 ? 3.0f : 0.02f);
    m.importance = testing::activation_importance(static_cast<size_t>(m.cols), seed + 100);
    mats.push_back(std::move(m));
  }
  for (const DType dtype : all_block_types()) {
    for (const bool imp : {false, true}) {
      for (const Encoder encoder : {Encoder::Search, Encoder::Fast}) {
        const ErrorPair e = compare_errors(dtype, mats, imp, encoder);
        EXPECT_LE(e.ours, e.llama) << dtype_name(dtype) << " " << encoder_name(encoder)
                                   << (imp ? " with" : " without") << " importance";
        EXPECT_GT(e.ours, 0.0);
      }
    }
  }
}

// Degenerate blocks: zeros, one spike, a constant, values near the f16 limits. Every encoder must give finite
// values, zeros must stay zeros, and the search must not lose to llama.cpp's encoder on any of them.
TEST(Quantize, DegenerateRows) {
  const int64_t n = 512;
  std::vector<std::vector<float>> rows;
  rows.emplace_back(n, 0.0f);
  rows.emplace_back(n, 0.0f);
  rows.back()[37] = 1.5f;
  rows.emplace_back(n, 0.25f);
  rows.emplace_back(n, -3.0f);
  rows.emplace_back(testing::gaussian_with_outliers(n, 5, 1e-9f));
  rows.emplace_back(testing::gaussian_with_outliers(n, 6, 3000.0f));
  for (auto& v : rows.back()) v = std::clamp(v, -65504.0f, 65504.0f);
  for (const DType dtype : all_block_types()) {
    std::vector<uint8_t> ours(row_bytes(dtype, n)), llama(row_bytes(dtype, n));
    std::vector<float> y(n);
    for (size_t k = 0; k < 2 * rows.size(); ++k) {
      const auto& x = rows[k % rows.size()];
      quantize_row(k < rows.size() ? Encoder::Search : Encoder::Fast, dtype, x.data(), ours.data(), n, nullptr);
      quantize_row(Encoder::Llama, dtype, x.data(), llama.data(), n, nullptr);
      dequantize_row(dtype, ours.data(), y.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_TRUE(std::isfinite(y[i])) << dtype_name(dtype) << " row " << k << " element " << i;
        if (k % rows.size() == 0) {
          ASSERT_EQ(y[i], 0.0f) << dtype_name(dtype);
        }
      }
      EXPECT_LE(quantization_error(dtype, x.data(), ours.data(), n, nullptr),
                quantization_error(dtype, x.data(), llama.data(), n, nullptr))
          << dtype_name(dtype) << " row " << k;
    }
  }
}

TEST(Quantize, RejectsBadInput) {
  std::vector<float> x(256, 0.5f);
  std::vector<uint8_t> out(row_bytes(DType::Q4_K, 256));
  x[100] = std::nanf("");
  try {
    quantize_row(DType::Q4_K, x.data(), out.data(), 256, nullptr);
    ADD_FAILURE() << "NaN accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput);
    EXPECT_NE(std::string(e.what()).find("element 100"), std::string::npos) << e.what();
  }
  x[100] = 1e6f;
  EXPECT_THROW(quantize_row(DType::Q8_0, x.data(), out.data(), 256, nullptr), Error);
  x[100] = 0.5f;
  std::vector<float> imp(256, 1.0f);
  imp[3] = -1.0f;
  EXPECT_THROW(quantize_row(DType::Q4_0, x.data(), out.data(), 256, imp.data()), Error);
  EXPECT_THROW(quantize_row(DType::Q4_K, x.data(), out.data(), 128, nullptr), Error);  // not whole blocks
  try {
    quantize_row(DType::F16, x.data(), out.data(), 256, nullptr);
    ADD_FAILURE() << "F16 has no block encoder";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
  }
  std::vector<float> values(4 * 128, 0.1f);
  values[3 * 128 + 5] = std::numeric_limits<float>::infinity();
  const Tensor t = Tensor::from_f32("model.layers.0.mlp.up_proj.weight", {4, 128}, values);
  try {
    quantize_tensor(t, DType::Q8_0, nullptr);
    ADD_FAILURE() << "infinity accepted";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("model.layers.0.mlp.up_proj.weight"), std::string::npos) << what;
    EXPECT_NE(what.find("row 3"), std::string::npos) << what;
  }
  try {
    quantize_tensor(t, DType::Q4_K, nullptr);
    ADD_FAILURE() << "128-wide rows accepted for Q4_K";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput);
    EXPECT_NE(std::string(e.what()).find("up_proj"), std::string::npos) << e.what();
  }
}

TEST(Quantize, TensorIsIdenticalForAnyThreadCount) {
  const int64_t rows = 96, cols = 512;
  const auto values = testing::gaussian_with_outliers(static_cast<size_t>(rows * cols), 51);
  const auto importance = testing::activation_importance(static_cast<size_t>(cols), 52);
  const Tensor src = Tensor::from_f32_as("w", {rows, cols}, values, DType::BF16);
  for (const DType dtype : all_block_types()) {
    std::vector<std::vector<uint8_t>> results;
    for (const int threads : {1, 2, 7}) {
      set_thread_count(threads);
      const Tensor q = quantize_tensor(src, dtype, importance.data());
      EXPECT_EQ(q.dtype(), dtype);
      EXPECT_EQ(q.shape(), src.shape());
      results.emplace_back(q.data(), q.data() + q.nbytes());
    }
    set_thread_count(0);
    EXPECT_EQ(results[0], results[1]) << dtype_name(dtype);
    EXPECT_EQ(results[0], results[2]) << dtype_name(dtype);
    // Each row of the tensor is exactly quantize_row on the decoded BF16 row.
    std::vector<float> row(static_cast<size_t>(cols));
    std::vector<uint8_t> expected(row_bytes(dtype, cols));
    src.rows_to_f32(rows - 1, rows, row.data());
    quantize_row(dtype, row.data(), expected.data(), cols, importance.data());
    EXPECT_TRUE(std::equal(expected.begin(), expected.end(), results[0].end() - static_cast<long>(expected.size())))
        << dtype_name(dtype);
  }
}

TEST(Quantize, TensorToFloatTypesConverts) {
  const auto values = testing::gaussian_with_outliers(64 * 48, 61);
  const Tensor src = Tensor::from_f32("w", {64, 48}, values);
  for (const DType dtype : {DType::F16, DType::BF16, DType::F32}) {
    const Tensor q = quantize_tensor(src, dtype, nullptr);
    const Tensor expected = Tensor::from_f32_as("w", {64, 48}, values, dtype);
    ASSERT_EQ(q.nbytes(), expected.nbytes());
    EXPECT_EQ(std::memcmp(q.data(), expected.data(), q.nbytes()), 0) << dtype_name(dtype);
  }
}

// Q4_0 and Q8_0 without importance take a fused path (llama.cpp's reference block and the polish in one pass
// over lanes). Q8_0: the same bytes as the block-by-block path, which an importance vector of ones takes (ggml's
// Q8_0 ignores importance; weights of one multiply exactly). Q4_0: every block is llama.cpp's reference block or
// decodes to a strictly smaller squared error, and the polish improves a real share of the blocks.
TEST(Quantize, FusedFastPathsMatchTheBlockPolish) {
  const int64_t n = 4096;
  const auto x = testing::gaussian_with_outliers(static_cast<size_t>(n), 41);
  const std::vector<float> ones(static_cast<size_t>(n), 1.0f);
  std::vector<uint8_t> fused(row_bytes(DType::Q8_0, n)), blocks(fused.size());
  quantize_row(Encoder::Fast, DType::Q8_0, x.data(), fused.data(), n, nullptr);
  quantize_row(Encoder::Fast, DType::Q8_0, x.data(), blocks.data(), n, ones.data());
  EXPECT_EQ(fused, blocks);

  std::vector<uint8_t> fast(row_bytes(DType::Q4_0, n)), ref(fast.size());
  quantize_row(Encoder::Fast, DType::Q4_0, x.data(), fast.data(), n, nullptr);
  quantize_row(Encoder::Reference, DType::Q4_0, x.data(), ref.data(), n, nullptr);
  const size_t block = row_bytes(DType::Q4_0, 32);
  int polished = 0;
  for (int64_t b = 0; b < n / 32; ++b) {
    const uint8_t* f = fast.data() + static_cast<size_t>(b) * block;
    const uint8_t* r = ref.data() + static_cast<size_t>(b) * block;
    if (std::memcmp(f, r, block) == 0) continue;
    ++polished;
    EXPECT_LT(quantization_error(DType::Q4_0, x.data() + 32 * b, f, 32, nullptr),
              quantization_error(DType::Q4_0, x.data() + 32 * b, r, 32, nullptr))
        << "block " << b;
  }
  EXPECT_GT(polished, n / 32 / 10);

  // Zero blocks, one of them −0 first: llama.cpp's bytes exactly (its scale is −0/8 from a +0 maximum).
  std::vector<float> zeros(64, 0.0f);
  zeros[0] = -0.0f;
  std::vector<uint8_t> fast_zero(row_bytes(DType::Q4_0, 64)), ref_zero(fast_zero.size());
  quantize_row(Encoder::Fast, DType::Q4_0, zeros.data(), fast_zero.data(), 64, nullptr);
  quantize_row(Encoder::Reference, DType::Q4_0, zeros.data(), ref_zero.data(), 64, nullptr);
  EXPECT_EQ(fast_zero, ref_zero);
}

TEST(Quantize, EncoderNames) {
  for (const Encoder e : {Encoder::Fast, Encoder::Search, Encoder::Reference, Encoder::Llama})
    EXPECT_EQ(encoder_from_name(encoder_name(e)), e);
  EXPECT_EQ(encoder_name(Encoder::Fast), "fast");
  EXPECT_FALSE(encoder_from_name("exhaustive").has_value());
  for (const DType dtype : all_block_types()) EXPECT_TRUE(can_encode(dtype));
  EXPECT_FALSE(can_encode(DType::F16));
}

}  // namespace
}  // namespace slmopt
