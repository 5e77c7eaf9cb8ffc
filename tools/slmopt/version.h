// `slmopt --version`: the release, the commit, the compiler and build type, and the SIMD kernel sets this build
// and CPU can run (the one in use first), so a bug report or benchmark names exactly what ran.
#pragma once

#include <string>

namespace slmopt::driver {

std::string version_text();

}  // namespace slmopt::driver
