#include "slmopt/exec/kv_cache.h"

#include "slmopt/core/error.h"

namespace slmopt {

KvCache::KvCache(const std::vector<int64_t>& kv_widths, int64_t capacity) : capacity_(capacity) {
  if (capacity < 0) throw_error(ErrorKind::Usage, "KV cache capacity must not be negative, got {}", capacity);
  keys_.reserve(kv_widths.size());
  values_.reserve(kv_widths.size());
  for (int64_t width : kv_widths) {
    keys_.emplace_back(capacity, width);
    values_.emplace_back(capacity, width);
  }
}

void KvCache::truncate(int64_t n) {
  if (n < 0 || n > size_)
    throw_error(ErrorKind::Usage, "cannot truncate a KV cache of {} tokens to {}", size_, n);
  size_ = n;
}

}  // namespace slmopt
