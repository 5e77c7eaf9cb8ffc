#include "version.h"

#include <fmt/format.h>

#include "slmopt/exec/cpu_features.h"
#include "slmopt_git_commit.h"

namespace slmopt::driver {

std::string version_text() {
  std::string kernels;
  for (KernelIsa isa : {KernelIsa::Avx512, KernelIsa::Avx2, KernelIsa::Portable})
    if (kernel_isa_supported(isa)) kernels += (kernels.empty() ? "" : ", ") + std::string(kernel_isa_name(isa));
  std::string in_use;
  try {
    in_use = std::string(kernel_isa_name(kernel_isa()));
  } catch (...) {  // SLMOPT_KERNEL names an unsupported set: --version still answers
    in_use = "none (SLMOPT_KERNEL is invalid)";
  }
  return fmt::format("slmopt {}\ncommit {}\ncompiler {}\nbuild type {}{}\nSIMD kernels {} (in use: {})", SLMOPT_VERSION,
                     SLMOPT_GIT_COMMIT, SLMOPT_COMPILER, SLMOPT_BUILD_TYPE,
                     SLMOPT_NATIVE_BUILD ? " (native CPU)" : "", kernels, in_use);
}

}  // namespace slmopt::driver
