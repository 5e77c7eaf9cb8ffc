#include "slmopt/core/atomic_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "live_mappings.h"
#include "slmopt/core/error.h"
#include "slmopt/core/interrupt.h"

namespace slmopt {
namespace {
constexpr size_t kBufferLimit = 4u << 20;
}

// The temporary is created with O_EXCL | O_NOFOLLOW under an unpredictable name: in a shared folder, a file or
// symlink planted at the name makes the open fail (we then pick another name) instead of being followed and
// overwritten — the target's folder may be writable by others.
AtomicFile::AtomicFile(std::string target_path) : target_(std::move(target_path)) {
  // An output over a file this run is reading (`compile DIR -o DIR/model.safetensors`, `-o` = the input GGUF)
  // would replace the input model with something else, or with itself half-read: refused before any byte is
  // written. Compared by device and inode, so relative paths, `..` and symlinks name the same file.
  struct stat existing {};
  if (::stat(target_.c_str(), &existing) == 0 && is_mapped_file(existing.st_dev, existing.st_ino))
    throw_error(ErrorKind::Usage, "{}: is a file of the input model this run reads; write the output elsewhere",
                target_);
  std::random_device entropy;
  int open_errno = 0;
  {
    // Created and registered in one step (core/interrupt.h): Ctrl-C in between would leave it behind.
    const auto hold = hold_off_interrupt_cleanup();
    for (int attempt = 0; attempt < 16 && fd_ < 0; ++attempt) {
      temp_ = fmt::format("{}.tmp.{}.{:08x}", target_, ::getpid(), entropy());
      fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
      if (fd_ < 0 && errno != EEXIST) break;
    }
    open_errno = errno;
    if (fd_ >= 0) register_temp_path(temp_);
  }
  if (fd_ < 0) throw_error(ErrorKind::Io, "{}: cannot create a temporary file beside it: {}", target_,
                           std::strerror(open_errno));
  buffer_.reserve(kBufferLimit);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) {
    ::unlink(temp_.c_str());
    unregister_temp_path(temp_);
  }
}

void AtomicFile::write_all(const char* p, size_t left) {
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_error(ErrorKind::Io, "{}: write failed: {}", target_, std::strerror(errno));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

void AtomicFile::flush_buffer() {
  write_all(buffer_.data(), buffer_.size());
  buffer_.clear();
}

void AtomicFile::write(const void* data, size_t n) {
  if (n >= kBufferLimit) {  // large blocks go straight to the file: no copy as big as a tensor
    flush_buffer();
    write_all(static_cast<const char*>(data), n);
  } else {
    if (buffer_.size() + n > kBufferLimit) flush_buffer();
    buffer_.append(static_cast<const char*>(data), n);
  }
  position_ += n;
}

void AtomicFile::write_zeros(size_t n) {
  static const char zeros[256] = {};
  while (n > 0) {
    const size_t k = n < sizeof zeros ? n : sizeof zeros;
    write(zeros, k);
    n -= k;
  }
}

void AtomicFile::commit() {
  flush_buffer();
  if (::fsync(fd_) != 0) throw_error(ErrorKind::Io, "{}: fsync failed: {}", target_, std::strerror(errno));
  ::close(fd_);
  fd_ = -1;
  {
    const auto hold = hold_off_interrupt_cleanup();  // a new entry in a folder Ctrl-C may be removing
    if (std::rename(temp_.c_str(), target_.c_str()) != 0) {
      const int rename_errno = errno;
      throw_error(ErrorKind::Io, "{}: rename failed: {}", target_, std::strerror(rename_errno));
    }
    committed_ = true;
    unregister_temp_path(temp_);
  }
}

void write_file_atomic(const std::string& path, const std::string& contents) {
  AtomicFile file(path);
  file.write(contents.data(), contents.size());
  file.commit();
}

void make_directories(const std::string& path) {
  std::error_code ec;
  {
    const auto hold = hold_off_interrupt_cleanup();  // may add a folder inside one Ctrl-C is removing
    std::filesystem::create_directories(path, ec);
  }
  if (ec) throw_error(ErrorKind::Io, "{}: cannot create directory: {}", path, ec.message());
}

}  // namespace slmopt
