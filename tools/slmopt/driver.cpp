#include "driver.h"

#include "slmopt/core/error.h"
#include "slmopt/core/mapped_file.h"

namespace slmopt::driver {

void require_path(const std::string& option, const std::string& path) {
  if (!file_exists(path)) throw_error(ErrorKind::Usage, "{}: '{}' does not exist", option, path);
}

}  // namespace slmopt::driver
