#include "slmopt/core/progress.h"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <unistd.h>

#include "slmopt/core/log.h"

namespace slmopt {
namespace {

// A bar is a line without its newline until finish(). Interrupted there (Ctrl-C, kill), the shell prompt would
// land after the bar; the handler ends the line first, then hands the signal to whoever handled it before (or
// the default action, which ends the process as before).
std::atomic<bool> line_open{false};
struct sigaction previous_int, previous_term;

void end_line_on_signal(int sig) {
  if (line_open.exchange(false)) {
    const char newline = '\n';
    [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, &newline, 1);
  }
  const struct sigaction& previous = sig == SIGINT ? previous_int : previous_term;
  if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN && !(previous.sa_flags & SA_SIGINFO)) {
    previous.sa_handler(sig);
    return;
  }
  ::sigaction(sig, &previous, nullptr);
  ::raise(sig);
}

void install_signal_handlers() {
  static const bool installed = [] {
    struct sigaction action {};
    action.sa_handler = end_line_on_signal;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, &previous_int);
    ::sigaction(SIGTERM, &action, &previous_term);
    return true;
  }();
  (void)installed;
}

}  // namespace

Progress::Progress(std::string label, uint64_t total, bool enabled)
    : label_(std::move(label)), total_(total), enabled_(enabled && stderr_is_terminal()),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {
  if (enabled_) install_signal_handlers();
}

Progress::~Progress() { finish(); }

void Progress::set_label(std::string label) {
  std::lock_guard<std::mutex> lock(mutex_);
  label_ = std::move(label);
}

void Progress::advance(uint64_t n) {
  done_ += n;
  if (enabled_) draw(false);
}

void Progress::draw(bool force) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const uint64_t done = done_.load();
  const double frac = total_ ? static_cast<double>(done) / static_cast<double>(total_) : 1.0;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double eta = frac > 0 ? elapsed * (1.0 - frac) / frac : 0.0;
  constexpr int width = 30;
  const int filled = static_cast<int>(frac * width);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(width, '.');
  std::fprintf(stderr, "\r%-28.28s [%s] %5.1f%%  %6.1fs  eta %5.1fs", label_.c_str(), bar.c_str(), frac * 100.0,
               elapsed, eta);
  std::fflush(stderr);
  line_open = true;
}

void Progress::finish() {
  if (!enabled_ || finished_) return;
  finished_ = true;
  draw(true);
  std::fprintf(stderr, "\n");
  line_open = false;
}

}  // namespace slmopt
