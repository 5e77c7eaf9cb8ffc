#include "driver.h"

#include <cstdio>
#include <iostream>

#include "slmopt/core/error.h"
#include "slmopt/core/mapped_file.h"

namespace slmopt::driver {

void print_json(const nlohmann::json& document) { std::cout << document.dump(2) << std::endl; }

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", bytes, units[u]);
  return buf;
}

void require_path(const std::string& option, const std::string& path) {
  if (!file_exists(path)) throw_error(ErrorKind::Usage, "{}: '{}' does not exist", option, path);
}

}  // namespace slmopt::driver
