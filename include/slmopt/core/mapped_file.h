// A read-only memory mapping of a whole file. Tensors loaded from safetensors/GGUF are views into it, so
// loading costs no copy and the operating system pages weights in and out as passes touch them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace slmopt {

class MappedFile {
 public:
  // Throws Error(Io) naming the path when the file cannot be opened or mapped.
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Reads a whole (small) file into a string; throws Error(Io) naming the path.
std::string read_text_file(const std::string& path);
bool file_exists(const std::string& path);

}  // namespace slmopt
