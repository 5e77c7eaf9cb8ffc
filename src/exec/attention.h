// Causal grouped-query attention over one window (internal to exec; ModelRunner is the public entry).
#pragma once

#include <cstdint>

#include "slmopt/exec/matrix.h"

namespace slmopt {

struct AttentionShape {
  int64_t n_heads;     // query heads
  int64_t n_kv_heads;  // KV heads; query head h reads KV head h / (n_heads / n_kv_heads)
  int64_t head_dim;
  float scale;         // score multiplier (Config::attention_scale())
  float softcap = 0;   // scores → softcap·tanh(scores / softcap) before masking; 0 = off
  int64_t window = 0;  // a query sees only the last `window` keys, itself included; 0 = all earlier keys
};

// q [T, n_heads·head_dim] after RoPE; keys/values hold n_keys = past + T valid rows of [*, n_kv_heads·head_dim]
// (keys after RoPE). Query row i is sequence index past + i and attends keys max(0, past+i−window+1)..past+i.
// Scores are scaled, soft-capped, and soft-maxed in float after subtracting the row maximum. out
// [T, n_heads·head_dim]. Parallel over (head, fixed block of query rows); each unit's arithmetic is the same
// whichever thread runs it.
void causal_attention(const RowMatrix& q, const RowMatrix& keys, const RowMatrix& values, int64_t n_keys,
                      int64_t past, const AttentionShape& shape, RowMatrix& out);

}  // namespace slmopt
