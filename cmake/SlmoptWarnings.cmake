# One place for compiler flags, applied to every slmopt target through slmopt_target_defaults().
add_library(slmopt_flags INTERFACE)
# GCC's -Wshadow=local has no clang spelling (clang builds: the sanitizer/fuzz build, cmake/SlmoptFuzz.cmake).
target_compile_options(slmopt_flags INTERFACE -Wall -Wextra -Wpedantic $<$<CXX_COMPILER_ID:GNU>:-Wshadow=local>
                       -Wnon-virtual-dtor -Wno-missing-field-initializers)
# GCC 12 reports false -Wrestrict overlaps inside std::string's inline code at -O3 (GCC bug 105329); the warning
# names libstdc++'s char_traits.h, not our code, so it is off for that compiler only.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  target_compile_options(slmopt_flags INTERFACE -Wno-restrict)
endif()
if(SLMOPT_WERROR)
  target_compile_options(slmopt_flags INTERFACE -Werror)
endif()
if(SLMOPT_NATIVE)
  target_compile_options(slmopt_flags INTERFACE -march=native)
endif()
# Otherwise the build stays at the compiler's baseline ISA (x86-64: SSE2), so the binary runs on any x86-64 CPU:
# AVX2/FMA/F16C and AVX-512 code lives only in functions with target attributes (src/exec/simd_target.h) that
# run after exec/cpu_features found the instructions; tests/integration/baseline_isa_test.sh proves it on the binary.
# Keep float semantics strict: -ffast-math would break bit-exact codecs and reproducibility.
target_compile_options(slmopt_flags INTERFACE -fno-fast-math -ffp-contract=off)
