// Run-time choice of the SIMD kernel set. __builtin_cpu_supports consults CPUID and, for AVX/AVX-512, the
// OS's XCR0 register, so a kernel is only chosen when its registers are saved across context switches.
#include "slmopt/exec/cpu_features.h"

#include <atomic>
#include <cstdlib>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif

#include "slmopt/core/error.h"

namespace slmopt {
namespace {

constexpr int kNoOverride = -1;
std::atomic<int> g_override{kNoOverride};

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// F16C from CPUID leaf 1 (ECX bit 29): clang 14's __builtin_cpu_supports has no "f16c" (the sanitizer and fuzz
// builds use clang). Its registers are the AVX ones, whose OS support the "avx2" check already covers.
bool cpu_has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
}
#endif

KernelIsa best_supported() {
  if (kernel_isa_supported(KernelIsa::Avx512)) return KernelIsa::Avx512;
  if (kernel_isa_supported(KernelIsa::Avx2)) return KernelIsa::Avx2;
  return KernelIsa::Portable;
}

KernelIsa from_environment() {
  const char* value = std::getenv("SLMOPT_KERNEL");
  if (value == nullptr || *value == '\0') return best_supported();
  const auto isa = kernel_isa_from_name(value);
  if (!isa)
    throw_error(ErrorKind::Usage, "SLMOPT_KERNEL='{}' is not a kernel set (expected portable, avx2 or avx512)",
                value);
  if (!kernel_isa_supported(*isa))
    throw_error(ErrorKind::Usage, "SLMOPT_KERNEL={}: this CPU (or build) does not support it", value);
  return *isa;
}

}  // namespace

std::string_view kernel_isa_name(KernelIsa isa) {
  switch (isa) {
    case KernelIsa::Portable: return "portable";
    case KernelIsa::Avx2: return "avx2";
    case KernelIsa::Avx512: return "avx512";
  }
  return "unknown";
}

std::optional<KernelIsa> kernel_isa_from_name(std::string_view name) {
  for (const auto isa : {KernelIsa::Portable, KernelIsa::Avx2, KernelIsa::Avx512})
    if (kernel_isa_name(isa) == name) return isa;
  return std::nullopt;
}

bool kernel_isa_supported(KernelIsa isa) {
  switch (isa) {
    case KernelIsa::Portable: return true;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    case KernelIsa::Avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
    case KernelIsa::Avx512:
      return kernel_isa_supported(KernelIsa::Avx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512dq");
#else
    case KernelIsa::Avx2:
    case KernelIsa::Avx512: return false;
#endif
  }
  return false;
}

KernelIsa kernel_isa() {
  const int forced = g_override.load(std::memory_order_relaxed);
  if (forced != kNoOverride) return static_cast<KernelIsa>(forced);
  static const KernelIsa chosen = from_environment();
  return chosen;
}

void set_kernel_isa(std::optional<KernelIsa> isa) {
  if (isa && !kernel_isa_supported(*isa))
    throw_error(ErrorKind::Usage, "kernel set {} is not supported by this CPU (or build)", kernel_isa_name(*isa));
  g_override.store(isa ? static_cast<int>(*isa) : kNoOverride, std::memory_order_relaxed);
}

}  // namespace slmopt
