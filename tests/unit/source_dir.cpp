// The repository path the tests read models, data and harnesses from. The only test source compiled with
// SLMOPT_SOURCE_DIR defined: a path in the compile flags of every test file would make each of their ccache
// entries belong to one checkout, so a fresh clone elsewhere (as CI makes) would recompile them all.
#include "source_dir.h"

#include <cstdlib>

namespace slmopt::testing {

std::string source_dir() {
  if (const char* env = std::getenv("SLMOPT_SOURCE_DIR")) return env;
  return SLMOPT_SOURCE_DIR;
}

}  // namespace slmopt::testing
