// GoogleTest checks that several unit test files share: an error of the right kind naming the right things, and
// slmopt's block decoders against ggml's, bit for bit.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "ggml_reference.h"
#include "slmopt/core/error.h"
#include "slmopt/ir/block_formats.h"
#include "slmopt/ir/dtype.h"

namespace slmopt::testing {

// Runs `body` and expects an Error of `kind` whose message contains every needle.
template <typename Body>
void expect_error(Body&& body, ErrorKind kind, const std::vector<std::string>& needles) {
  try {
    body();
    ADD_FAILURE() << "no error (expected one mentioning '" << (needles.empty() ? "" : needles[0]) << "')";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    for (const std::string& n : needles)
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << "'" << e.what() << "' lacks '" << n << "'";
  }
}

// Decodes `bytes` (rows of n elements) with slmopt and with ggml and requires identical float bits.
inline void expect_same_decode(DType dtype, const std::vector<uint8_t>& bytes, int64_t n, const char* what) {
  const auto& ggml = GgmlLibrary::get();
  std::vector<float> ours(static_cast<size_t>(n)), theirs(static_cast<size_t>(n));
  dequantize_row(dtype, bytes.data(), ours.data(), n);
  ggml.dequantize_row(dtype, bytes.data(), theirs.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    uint32_t a, b;
    std::memcpy(&a, &ours[static_cast<size_t>(i)], 4);
    std::memcpy(&b, &theirs[static_cast<size_t>(i)], 4);
    ASSERT_EQ(a, b) << dtype_name(dtype) << " (" << what << "): element " << i << " decodes to "
                    << ours[static_cast<size_t>(i)] << ", ggml " << theirs[static_cast<size_t>(i)];
  }
}

}  // namespace slmopt::testing
