#include "slmopt/core/parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace slmopt {
namespace {

std::atomic<int> g_threads{0};

// A persistent pool: the forward pass calls parallel_for thousands of times per evaluation, and thread
// start-up would dominate small matrices.
class Pool {
 public:
  static Pool& instance() {
    static Pool pool;
    return pool;
  }

  void run(size_t n_chunks, const std::function<void(size_t)>& chunk_body, int threads) {
    ensure_workers(threads - 1);
    std::unique_lock<std::mutex> lock(mutex_);
    job_ = &chunk_body;
    n_chunks_ = n_chunks;
    next_chunk_.store(0);
    pending_workers_ = std::min<int>(threads - 1, static_cast<int>(workers_.size()));
    active_limit_ = pending_workers_;
    error_ = nullptr;
    ++generation_;
    lock.unlock();
    cv_work_.notify_all();
    drain();
    lock.lock();
    cv_done_.wait(lock, [&] { return pending_workers_ == 0; });
    job_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
      ++generation_;
    }
    cv_work_.notify_all();
    for (auto& worker : workers_) worker.join();
  }

 private:
  void ensure_workers(int wanted) {
    std::lock_guard<std::mutex> lock(mutex_);
    while (static_cast<int>(workers_.size()) < wanted) {
      const int index = static_cast<int>(workers_.size());
      workers_.emplace_back([this, index] { worker_loop(index); });
    }
  }

  void drain() {
    for (;;) {
      const size_t chunk = next_chunk_.fetch_add(1);
      if (chunk >= n_chunks_) return;
      try {
        (*job_)(chunk);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
      }
    }
  }

  void worker_loop(int index) {
    uint64_t seen = 0;
    for (;;) {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_work_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      if (index >= active_limit_ || job_ == nullptr) continue;
      lock.unlock();
      drain();
      lock.lock();
      if (--pending_workers_ == 0) cv_done_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable cv_work_, cv_done_;
  std::vector<std::thread> workers_;
  const std::function<void(size_t)>* job_ = nullptr;
  size_t n_chunks_ = 0;
  std::atomic<size_t> next_chunk_{0};
  int pending_workers_ = 0;
  int active_limit_ = 0;
  uint64_t generation_ = 0;
  bool stopping_ = false;
  std::exception_ptr error_;
};

thread_local bool t_inside_parallel = false;

}  // namespace

void set_thread_count(int threads) { g_threads.store(threads < 0 ? 0 : threads); }

int thread_count() {
  const int t = g_threads.load();
  if (t > 0) return t;
  return std::max(1u, std::thread::hardware_concurrency());
}

void parallel_for(size_t n, const std::function<void(size_t, size_t)>& body, size_t min_chunk) {
  if (n == 0) return;
  const int threads = thread_count();
  min_chunk = std::max<size_t>(1, min_chunk);
  // Nested calls run inline: the pool is busy with the outer loop already.
  if (threads <= 1 || n <= min_chunk || t_inside_parallel) {
    body(0, n);
    return;
  }
  const size_t max_chunks = static_cast<size_t>(threads) * 4;
  const size_t n_chunks = std::min(max_chunks, (n + min_chunk - 1) / min_chunk);
  const size_t chunk_len = (n + n_chunks - 1) / n_chunks;
  const size_t real_chunks = (n + chunk_len - 1) / chunk_len;
  std::function<void(size_t)> chunk_body = [&](size_t c) {
    struct InsideGuard {
      bool was = t_inside_parallel;
      InsideGuard() { t_inside_parallel = true; }
      ~InsideGuard() { t_inside_parallel = was; }
    } guard;
    const size_t begin = c * chunk_len;
    body(begin, std::min(n, begin + chunk_len));
  };
  Pool::instance().run(real_chunks, chunk_body, threads);
}

}  // namespace slmopt
