#include "sha256_file.h"

#include <algorithm>
#include <filesystem>
#include <vector>

#include "slmopt/core/error.h"
#include "slmopt/core/sha256.h"

namespace slmopt::pipeline {

nlohmann::json hash_path(const std::string& path) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(path)) {
    if (!fs::is_regular_file(path)) throw_error(ErrorKind::Io, "{}: missing (was the target written?)", path);
    return {{"sha256", sha256_of_file(path)}, {"bytes", fs::file_size(path)}};
  }
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(path))
    if (e.is_regular_file()) files.push_back(fs::relative(e.path(), path).generic_string());
  std::sort(files.begin(), files.end());
  nlohmann::json list = nlohmann::json::array();
  Sha256 listing;
  uint64_t bytes = 0;
  for (const auto& rel : files) {
    const std::string full = (fs::path(path) / rel).string();
    const std::string h = sha256_of_file(full);
    const uint64_t size = fs::file_size(full);
    bytes += size;
    list.push_back({{"path", rel}, {"sha256", h}, {"bytes", size}});
    const std::string line = h + "  " + rel + "\n";
    listing.update(line.data(), line.size());
  }
  return {{"sha256", listing.hex_digest()}, {"bytes", bytes}, {"files", list}};
}

}  // namespace slmopt::pipeline
