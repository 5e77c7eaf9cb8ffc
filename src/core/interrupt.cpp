#include "slmopt/core/interrupt.h"

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>
#include <pthread.h>
#include <unistd.h>

#include "slmopt/core/log.h"

namespace slmopt {
namespace {

std::recursive_mutex& registry_mutex() {
  static std::recursive_mutex m;
  return m;
}

std::map<std::string, int>& registry() {
  static std::map<std::string, int> paths;  // path → registrations
  return paths;
}

[[noreturn]] void clean_up_and_exit(int signal) {
  {
    // Held until exit: no writer can register (or rename away) a path while the registered ones are removed.
    std::lock_guard<std::recursive_mutex> lock(registry_mutex());
    std::error_code ec;
    for (const auto& [path, count] : registry()) std::filesystem::remove_all(path, ec);
    // A progress bar may be mid-line: end it so the shell prompt starts on a fresh line.
    if (stderr_is_terminal()) std::fputs("\n", stderr);
    std::fprintf(stderr, "slmopt: interrupted (%s); removed unfinished outputs\n",
                 signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "SIGHUP");
    std::fflush(stderr);
  }
  ::_exit(128 + signal);
}

}  // namespace

void install_interrupt_cleanup() {
  static std::once_flag once;
  std::call_once(once, [] {
    // A signal the parent set to be ignored (nohup's SIGHUP, SIGINT for a shell's background job) stays ignored:
    // waiting for it would turn it back on.
    sigset_t set;
    sigemptyset(&set);
    for (int signal : {SIGINT, SIGTERM, SIGHUP}) {
      struct sigaction current {};
      if (sigaction(signal, nullptr, &current) == 0 && current.sa_handler == SIG_IGN) continue;
      sigaddset(&set, signal);
    }
    if (pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0) return;
    std::thread([set] {
      int signal = 0;
      while (sigwait(&set, &signal) != 0) {
      }
      clean_up_and_exit(signal);
    }).detach();
  });
}

std::unique_lock<std::recursive_mutex> hold_off_interrupt_cleanup() {
  return std::unique_lock<std::recursive_mutex>(registry_mutex());
}

void register_temp_path(const std::string& path) {
  std::lock_guard<std::recursive_mutex> lock(registry_mutex());
  ++registry()[path];
}

void unregister_temp_path(const std::string& path) {
  std::lock_guard<std::recursive_mutex> lock(registry_mutex());
  auto it = registry().find(path);
  if (it != registry().end() && --it->second == 0) registry().erase(it);
}

}  // namespace slmopt
