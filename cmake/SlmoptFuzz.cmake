# The hostile-input build (scripts/fuzz.sh, scripts/test.sh in CI): clang with AddressSanitizer and
# UndefinedBehaviorSanitizer on every slmopt library, plus libFuzzer's coverage instrumentation
# (-fsanitize=fuzzer-no-link) so that one build folder serves both the fuzz harnesses (tests/fuzz/, linked with
# -fsanitize=fuzzer) and the sanitized test subset (slmopt_sanitized_tests). -O1 keeps the build and the runs
# quick while leaving the sanitizers' reports exact; every UB report aborts (no recovery), so a test fails on it.
option(SLMOPT_FUZZ "Build with clang's ASan+UBSan and libFuzzer instrumentation (tests/fuzz/)" OFF)
if(SLMOPT_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "SLMOPT_FUZZ needs clang (configure with -DCMAKE_CXX_COMPILER=clang++-14)")
  endif()
  set(slmopt_sanitizers -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  target_compile_options(slmopt_flags INTERFACE ${slmopt_sanitizers} -fsanitize=fuzzer-no-link)
  target_link_options(slmopt_flags INTERFACE ${slmopt_sanitizers})
endif()
