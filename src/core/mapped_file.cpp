#include "slmopt/core/mapped_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <sys/mman.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "live_mappings.h"
#include "slmopt/core/error.h"

namespace slmopt {
namespace {

// Live mappings (start → size), so release_mapped_pages never touches memory it does not own: MADV_DONTNEED on
// anonymous memory would zero it, while on a read-only file mapping it only drops pages that can be read again.
// Both live until the process ends (never destroyed): a MappedFile held by any static object (a cache of loaded
// models) is destroyed at exit, possibly after function-local statics constructed later than it, and must still
// find them.
std::mutex& mappings_mutex() {
  static auto* m = new std::mutex;
  return *m;
}
struct LiveMapping {
  size_t size;
  dev_t device;  // which file: AtomicFile refuses to replace a file that is being read (output path = input path)
  ino_t inode;
};
std::map<uintptr_t, LiveMapping>& mappings() {
  static auto* m = new std::map<uintptr_t, LiveMapping>;
  return *m;
}

}  // namespace

bool is_mapped_file(dev_t device, ino_t inode) {
  std::lock_guard<std::mutex> lock(mappings_mutex());
  for (const auto& [start, m] : mappings())
    if (m.device == device && m.inode == inode) return true;
  return false;
}

void release_mapped_pages(const void* data, size_t n) {
  if (data == nullptr || n == 0) return;
  const auto begin = reinterpret_cast<uintptr_t>(data);
  const uintptr_t end = begin + n;
  {
    std::lock_guard<std::mutex> lock(mappings_mutex());
    auto it = mappings().upper_bound(begin);
    if (it == mappings().begin()) return;
    --it;
    if (end > it->first + it->second.size) return;
  }
  static const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_error(ErrorKind::Io, "{}: cannot open: {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw_error(ErrorKind::Io, "{}: not a regular file", path);
  }
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = static_cast<size_t>(st.st_size);
  if (file->size_ > 0) {
    void* p = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      throw_error(ErrorKind::Io, "{}: cannot map: {}", path, std::strerror(err));
    }
    file->data_ = static_cast<const uint8_t*>(p);
    std::lock_guard<std::mutex> lock(mappings_mutex());
    mappings()[reinterpret_cast<uintptr_t>(p)] = {file->size_, st.st_dev, st.st_ino};
  }
  ::close(fd);
  return file;
}

MappedFile::~MappedFile() {
  if (data_ == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(mappings_mutex());
    mappings().erase(reinterpret_cast<uintptr_t>(data_));
  }
  ::munmap(const_cast<uint8_t*>(data_), size_);
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error(ErrorKind::Io, "{}: cannot open: {}", path, std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace slmopt
