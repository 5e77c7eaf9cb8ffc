// Which SIMD kernels the stored-type matrix products use (exec/stored_linear). The best set this CPU supports
// is picked at run time; SLMOPT_KERNEL=portable|avx2|avx512 in the environment forces one (tests and
// benchmarks use set_kernel_isa). Every set computes the same bits: the kernels share one summation order
// (16 interleaved partial sums, a fixed pairwise tree), so the choice changes speed only.
#pragma once

#include <optional>
#include <string_view>

namespace slmopt {

enum class KernelIsa { Portable, Avx2, Avx512 };

std::string_view kernel_isa_name(KernelIsa isa);
std::optional<KernelIsa> kernel_isa_from_name(std::string_view name);

// Whether this build and CPU can run `isa` (Avx512 needs AVX-512 F/BW/VL/DQ with OS support).
bool kernel_isa_supported(KernelIsa isa);

// The set in use: set_kernel_isa's override, else SLMOPT_KERNEL, else the best supported. Throws
// Error(Usage) naming SLMOPT_KERNEL when the variable names an unknown or unsupported set.
KernelIsa kernel_isa();

// Forces `isa` for this process (nullopt: back to the environment / detection). Throws Error(Usage) when
// the CPU lacks it.
void set_kernel_isa(std::optional<KernelIsa> isa);

}  // namespace slmopt
