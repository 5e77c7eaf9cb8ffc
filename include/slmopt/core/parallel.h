// A fixed-size worker pool and parallel_for. Work is split into index ranges, never into float reductions
// whose order depends on the thread count, so results are identical for any --threads value.
#pragma once

#include <cstddef>
#include <functional>

namespace slmopt {

// Threads used by parallel_for. 0 (the default) means the hardware concurrency.
void set_thread_count(int threads);
int thread_count();

// Calls body(begin, end) on disjoint chunks covering [0, n). Chunks are at least min_chunk long.
// Each index is visited exactly once; body must not depend on how the range was split.
void parallel_for(size_t n, const std::function<void(size_t begin, size_t end)>& body, size_t min_chunk = 1);

}  // namespace slmopt
