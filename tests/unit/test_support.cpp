#include "test_support.h"

#include <cstdlib>
#include <filesystem>
#include <unistd.h>

namespace slmopt::testing {

static std::string source_dir() {
  if (const char* env = std::getenv("SLMOPT_SOURCE_DIR")) return env;
  return SLMOPT_SOURCE_DIR;
}

std::string model_path(const std::string& relative) { return source_dir() + "/models/" + relative; }
std::string data_path(const std::string& file) { return source_dir() + "/models/data/" + file; }

std::string scratch_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("slmopt_test_" + std::to_string(::getpid()) + "_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

}  // namespace slmopt::testing
