// Ctrl-C (SIGINT), SIGTERM and SIGHUP end slmopt without partial outputs: temporary files and folders that are
// being assembled (AtomicFile temporaries, HF folders and distillation kits built under a temporary name) are
// registered here, and an interrupt removes every registered path before the process exits with 128 + signal. A
// signal inherited as ignored (nohup, a script's background job) stays ignored.
//
// How: install_interrupt_cleanup() blocks those signals in the calling thread before any other thread exists (so
// every thread inherits the mask) and starts one thread that waits for them with sigwait(). That thread is an
// ordinary thread, not a signal handler, so it may take locks and use std::filesystem to clean up. Without the
// installation (library use, tests) registration is harmless bookkeeping.
//
// The cleanup runs while the other threads go on writing, so a writer that creates an entry (a file, a folder, a
// rename into a staging folder) while remove_all() walks that folder would leave it behind (rmdir: not empty).
// Writers therefore create entries under hold_off_interrupt_cleanup(): the cleanup takes the same lock and keeps
// it until the process exits, so every entry is made either before the cleanup starts (and removed by it) or
// never (the writer waits on the lock until _exit).
#pragma once

#include <mutex>
#include <string>

namespace slmopt {

// Call once, first thing in main().
void install_interrupt_cleanup();

// Paths (files or folders) an interrupt must remove. Registering the same path twice needs two unregisters.
void register_temp_path(const std::string& path);
void unregister_temp_path(const std::string& path);

// Held while a quick call adds an entry to the file system (open with O_CREAT, mkdir, rename) and registers it.
// Recursive: register_temp_path() may be called while holding it. Never hold it across slow work.
[[nodiscard]] std::unique_lock<std::recursive_mutex> hold_off_interrupt_cleanup();

// Registers a path for the guard's lifetime.
class RemoveOnInterrupt {
 public:
  explicit RemoveOnInterrupt(std::string path) : path_(std::move(path)) { register_temp_path(path_); }
  ~RemoveOnInterrupt() { unregister_temp_path(path_); }
  RemoveOnInterrupt(const RemoveOnInterrupt&) = delete;
  RemoveOnInterrupt& operator=(const RemoveOnInterrupt&) = delete;

 private:
  std::string path_;
};

}  // namespace slmopt
