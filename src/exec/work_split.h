// How finely exec splits work across the thread pool (internal). Splitting only decides which thread runs
// which independent item, never the arithmetic, so these numbers trade speed only.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace slmopt {

// Below about this many multiply-adds (tens of microseconds) a chunk is not worth waking another thread for:
// token-by-token decoding would spend more time in hand-offs than in arithmetic.
inline constexpr int64_t kMinFlopsPerChunk = int64_t{1} << 18;

// parallel_for's min_chunk for items that cost flops_per_item multiply-adds each.
inline size_t min_chunk_for(int64_t flops_per_item) {
  return static_cast<size_t>(std::max<int64_t>(1, kMinFlopsPerChunk / std::max<int64_t>(1, flops_per_item)));
}

}  // namespace slmopt
