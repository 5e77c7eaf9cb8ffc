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

// Drops the resident pages of [data, data + n) when the range lies inside a live MappedFile (a no-op for any
// other memory): the next access reads them again from the page cache or the disk. Streaming passes call it on
// the input they have finished with, so a model larger than RAM is read once with about one tensor resident.
// Only whole pages inside the range are dropped.
void release_mapped_pages(const void* data, size_t n);

// Reads a whole (small) file into a string; throws Error(Io) naming the path.
std::string read_text_file(const std::string& path);
bool file_exists(const std::string& path);

}  // namespace slmopt
