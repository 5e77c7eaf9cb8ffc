// Output files appear whole or not at all: bytes go to a temporary file beside the target, which commit()
// fsyncs and renames over the target. Destroying an uncommitted AtomicFile removes the temporary, so an
// error or an exception never leaves a partial artifact behind.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace slmopt {

class AtomicFile {
 public:
  explicit AtomicFile(std::string target_path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n);
  void write_zeros(size_t n);
  uint64_t position() const { return position_; }
  void commit();

  const std::string& target_path() const { return target_; }

 private:
  void flush_buffer();
  void write_all(const char* data, size_t n);
  std::string target_;
  std::string temp_;
  int fd_ = -1;
  uint64_t position_ = 0;
  std::string buffer_;
  bool committed_ = false;
};

// Writes a small text file atomically.
void write_file_atomic(const std::string& path, const std::string& contents);

// Creates a directory and its parents; throws Error(Io) naming the path.
void make_directories(const std::string& path);

}  // namespace slmopt
