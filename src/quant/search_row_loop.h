// The row loop every search and fast encoder of search_encoders.h shares (private to src/quant): llama.cpp's own
// blocks first, then one candidate per block from slmopt's encoder, kept where it is better. The encoders differ
// only in the candidate: the search encoders build one from the elements (`rebuilt`), the fast ones polish the
// stored block and may have none.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "search_encoders.h"
#include "slmopt/ir/dtype.h"

namespace slmopt::quant_detail {

// How a candidate replaces the stored block. Decode: only where the candidate decodes to a strictly smaller
// weighted error (keep_better_block, in double precision). Trust: always, for candidates whose own search already
// compared them with the stored block with a margin, which costs less than decoding both.
enum class CandidateCheck { Decode, Trust };

// `llama(x, dst, n, importance)` writes llama.cpp's blocks; `candidate(x, w, stored, out)` returns false when it
// has no candidate for the block. Without an importance vector the weights are ones.
template <typename Block, int kBlockElems, auto llama, auto candidate>
void improve_blocks(DType dtype, const float* x, uint8_t* dst, int64_t n, const float* importance,
                    CandidateCheck check = CandidateCheck::Decode) {
  llama(x, dst, n, importance);
  float ones[kBlockElems];
  std::fill(ones, ones + kBlockElems, 1.0f);
  for (int64_t i = 0; i < n / kBlockElems; ++i) {
    const float* xb = x + i * kBlockElems;
    const float* w = importance ? importance + i * kBlockElems : ones;
    uint8_t* current = dst + static_cast<size_t>(i) * sizeof(Block);
    Block stored, better;
    std::memcpy(&stored, current, sizeof(Block));
    if (!candidate(xb, w, stored, better)) continue;
    if (check == CandidateCheck::Trust)
      std::memcpy(current, &better, sizeof(Block));
    else
      keep_better_block(dtype, xb, importance ? w : nullptr, kBlockElems, current,
                        reinterpret_cast<const uint8_t*>(&better), sizeof(Block));
  }
}

// A search encoder's candidate: built from the elements alone, whatever llama.cpp stored.
template <typename Block, auto build>
bool rebuilt(const float* x, const float* w, const Block& /*stored*/, Block& out) {
  build(x, w, out);
  return true;
}

}  // namespace slmopt::quant_detail
