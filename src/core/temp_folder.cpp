#include "slmopt/core/temp_folder.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sys/stat.h>

#include "slmopt/core/error.h"
#include "slmopt/core/interrupt.h"

namespace slmopt {
namespace {

// The process umask, read without changing it (umask(2) can only set it, which would race with other threads
// creating files); Linux reports it in /proc/self/status.
mode_t current_umask() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("Umask:", 0) == 0) return static_cast<mode_t>(std::stoul(line.substr(6), nullptr, 8));
  return 022;
}

}  // namespace

TempFolder::TempFolder(const std::string& parent, const std::string& prefix) {
  std::string pattern = (std::filesystem::path(parent) / (prefix + "XXXXXX")).string();
  {
    // Created and registered in one step: Ctrl-C in between would leave it behind.
    const auto hold = hold_off_interrupt_cleanup();
    if (::mkdtemp(pattern.data()) == nullptr) {
      const int mkdtemp_errno = errno;
      throw_error(ErrorKind::Io, "{}: cannot create a temporary folder in it: {}", parent,
                  std::strerror(mkdtemp_errno));
    }
    register_temp_path(pattern);
  }
  ::chmod(pattern.c_str(), 0777 & ~current_umask());
  path_ = pattern;
}

TempFolder::~TempFolder() {
  std::error_code ec;
  if (!released_) std::filesystem::remove_all(path_, ec);
  unregister_temp_path(path_.string());
}

void TempFolder::release() { released_ = true; }

void move_into_place(const std::filesystem::path& from, const std::filesystem::path& to) {
  std::error_code ec;
  {
    const auto hold = hold_off_interrupt_cleanup();
    std::filesystem::rename(from, to, ec);
  }
  if (ec) throw_error(ErrorKind::Io, "{}: cannot move into place from {}: {}", to.string(), from.string(), ec.message());
}

}  // namespace slmopt
