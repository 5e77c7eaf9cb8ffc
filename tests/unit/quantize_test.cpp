// Encoders (quant/block_quantize) against llama.cpp: the reference encoders byte for byte, the llama-compatible
// encoders against ggml_quantize_chunk byte for byte, and slmopt's default search never worse than llama.cpp's
// quantizer on the error it minimises.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "ggml_reference.h"
#include "quant_real_weights.h"
#include "quant_test_data.h"
#include "slmopt/core/error.h"
#include "slmopt/core/parallel.h"
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

// Σ error of slmopt's search and of ggml_quantize_chunk over the rows of every matrix.
ErrorPair compare_errors(DType dtype, const std::vector<testing::RealMatrix>& mats, bool with_importance) {
  const auto& ggml = testing::GgmlLibrary::get();
  ErrorPair e;
  for (const auto& m : mats) {
    if (m.cols % traits(dtype).block_size != 0) continue;
    const float* imp = with_importance ? m.importance.data() : nullptr;
    const size_t rb = row_bytes(dtype, m.cols);
    std::vector<uint8_t> ours(rb * static_cast<size_t>(m.rows)), theirs(rb * static_cast<size_t>(m.rows));
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

}  // namespace
}  // namespace slmopt
