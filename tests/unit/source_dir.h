// The repository the tests run from: $SLMOPT_SOURCE_DIR (ctest sets it), else the path the tests were built from.
#pragma once

#include <string>

namespace slmopt::testing {

std::string source_dir();

}  // namespace slmopt::testing
