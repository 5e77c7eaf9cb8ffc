# The hostile-input build (scripts/fuzz.sh, scripts/test.sh in CI): clang with AddressSanitizer and
# UndefinedBehaviorSanitizer on every slmopt library, plus libFuzzer's coverage instrumentation
# (-fsanitize=fuzzer-no-link, of slmopt's own code only: fuzz_coverage_ignorelist.txt) so that one build folder
# serves both the fuzz harnesses (tests/fuzz/, linked with -fsanitize=fuzzer) and the sanitized test subset
# (slmopt_sanitized_tests). -O1 keeps the build and the runs
# quick while leaving the sanitizers' reports exact; every UB report aborts (no recovery), so a test fails on it.
option(SLMOPT_FUZZ "Build with clang's ASan+UBSan and libFuzzer instrumentation (tests/fuzz/)" OFF)
if(SLMOPT_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "SLMOPT_FUZZ needs clang (configure with -DCMAKE_CXX_COMPILER=clang++-14)")
  endif()
  set(slmopt_sanitizers -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  # The compiler reads the list through a copy named by its hash: neither ninja nor ccache tracks the list's
  # contents, so an edit re-configures and changes every command line, which rebuilds (and misses the cache).
  set(ignorelist_source ${CMAKE_CURRENT_LIST_DIR}/fuzz_coverage_ignorelist.txt)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${ignorelist_source})
  file(MD5 ${ignorelist_source} ignorelist_md5)
  set(ignorelist ${CMAKE_BINARY_DIR}/fuzz_coverage_ignorelist_${ignorelist_md5}.txt)
  configure_file(${ignorelist_source} ${ignorelist} COPYONLY)
  target_compile_options(slmopt_flags INTERFACE ${slmopt_sanitizers} -fsanitize=fuzzer-no-link
                         -fsanitize-coverage-ignorelist=${ignorelist})
  target_link_options(slmopt_flags INTERFACE ${slmopt_sanitizers})
endif()
