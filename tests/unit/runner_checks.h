// Checks on a ModelRunner that several forward tests share: logits against the double-precision reference,
// bit-identical logits at any thread count, and chunked decoding through a KvCache against one full pass.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "forward_reference.h"
#include "slmopt/core/parallel.h"
#include "slmopt/exec/model_runner.h"

namespace slmopt::testing {

// |got − want| ≤ rel_tol · max|want| for every logit; also insists the logits are not trivially small.
inline void expect_matches_reference(const RowMatrix& got, const DoubleRows& want, double rel_tol) {
  ASSERT_EQ(got.rows(), static_cast<int64_t>(want.size()));
  double scale = 0;
  for (const auto& row : want)
    for (double v : row) scale = std::max(scale, std::abs(v));
  ASSERT_GT(scale, 0.1);
  for (size_t t = 0; t < want.size(); ++t) {
    ASSERT_EQ(got.cols(), static_cast<int64_t>(want[t].size()));
    for (size_t v = 0; v < want[t].size(); ++v)
      ASSERT_NEAR(got(static_cast<int64_t>(t), static_cast<int64_t>(v)), want[t][v], rel_tol * scale)
          << "position " << t << ", token " << v;
  }
}

inline bool bit_identical(const RowMatrix& a, const RowMatrix& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<size_t>(a.size())) == 0;
}

// Logits of windows[0], of all windows as a batch, and of the first `decoded` tokens of windows[0] decoded
// through a cache are bit-identical for 1, 2 and 3 threads; a window alone or in a batch gives the same bits.
inline void expect_same_bits_at_any_thread_count(const ModelRunner& runner,
                                                 const std::vector<std::vector<int32_t>>& windows, size_t decoded) {
  const auto capacity = static_cast<int64_t>(windows[0].size());
  set_thread_count(1);
  const RowMatrix single = runner.logits(windows[0]);
  const auto batch_1 = runner.logits_batch(windows);
  KvCache cache_1 = runner.make_cache(capacity);
  const RowMatrix decoded_1 = runner.decode(cache_1, std::span(windows[0]).first(decoded));
  for (int threads : {2, 3}) {
    set_thread_count(threads);
    EXPECT_TRUE(bit_identical(runner.logits(windows[0]), single)) << threads << " threads";
    const auto batch = runner.logits_batch(windows);
    for (size_t w = 0; w < windows.size(); ++w)
      EXPECT_TRUE(bit_identical(batch[w], batch_1[w])) << threads << " threads, window " << w;
    KvCache cache = runner.make_cache(capacity);
    EXPECT_TRUE(bit_identical(runner.decode(cache, std::span(windows[0]).first(decoded)), decoded_1));
  }
  set_thread_count(0);
  EXPECT_TRUE(bit_identical(batch_1[0], single));
}

// Decodes `tokens` in the given chunk sizes and checks every chunk's logits against the matching rows of a
// full recompute: |Δ| ≤ 1e-5 · max|logit|.
inline void expect_incremental_matches_full(const ModelRunner& runner, const std::vector<int32_t>& tokens,
                                            const std::vector<size_t>& chunks) {
  const RowMatrix full = runner.logits(tokens);
  const float tolerance = 1e-5f * full.cwiseAbs().maxCoeff();
  KvCache cache = runner.make_cache(static_cast<int64_t>(tokens.size()));
  size_t done = 0;
  for (size_t chunk : chunks) {
    const RowMatrix part = runner.decode(cache, std::span(tokens).subspan(done, chunk));
    ASSERT_EQ(part.rows(), static_cast<int64_t>(chunk));
    EXPECT_LE((part - full.middleRows(static_cast<int64_t>(done), static_cast<int64_t>(chunk))).cwiseAbs().maxCoeff(),
              tolerance)
        << "chunk at " << done;
    done += chunk;
    EXPECT_EQ(cache.size(), static_cast<int64_t>(done));
  }
  ASSERT_EQ(done, tokens.size());
}

}  // namespace slmopt::testing
