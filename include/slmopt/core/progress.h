// A one-line progress bar with an ETA on stderr, drawn only when stderr is a terminal (CI logs and pipes stay
// clean). Thread-safe: workers may call advance() concurrently.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace slmopt {

class Progress {
 public:
  Progress(std::string label, uint64_t total, bool enabled);
  ~Progress();
  void advance(uint64_t n = 1);
  void set_label(std::string label);
  void finish();

 private:
  void draw(bool force);
  std::string label_;
  uint64_t total_;
  std::atomic<uint64_t> done_{0};
  bool enabled_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
  std::mutex mutex_;
};

}  // namespace slmopt
