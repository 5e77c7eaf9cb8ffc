// Keys (after RoPE) and values of the tokens seen so far, one [capacity, kv_heads · head_dim] buffer per layer,
// so incremental decoding computes only the new tokens. Made by ModelRunner::make_cache for that runner's
// shapes; ModelRunner::decode appends to it.
#pragma once

#include <cstdint>
#include <vector>

#include "slmopt/exec/matrix.h"

namespace slmopt {

class KvCache {
 public:
  KvCache() = default;

  int64_t size() const { return size_; }          // tokens held
  int64_t capacity() const { return capacity_; }  // tokens it can hold
  int64_t layer_count() const { return static_cast<int64_t>(keys_.size()); }

  void clear() { size_ = 0; }
  // Forgets every token after the first n (n <= size()), e.g. to re-decode from a shared prefix.
  void truncate(int64_t n);

  // Layer `layer`'s stored keys and values: the first size() rows are valid.
  const RowMatrix& keys(int64_t layer) const { return keys_.at(static_cast<size_t>(layer)); }
  const RowMatrix& values(int64_t layer) const { return values_.at(static_cast<size_t>(layer)); }

 private:
  friend class ModelRunner;
  KvCache(const std::vector<int64_t>& kv_widths, int64_t capacity);

  std::vector<RowMatrix> keys_, values_;
  int64_t size_ = 0;
  int64_t capacity_ = 0;
};

}  // namespace slmopt
