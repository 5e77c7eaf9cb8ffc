// How a fuzz harness is written: one file per parser, `SLMOPT_FUZZ_TARGET(name) { ... return 0; }`, that hands
// the bytes to the parser the way the CLI would. Errors slmopt reports (slmopt::Error: a bad file, an unsupported
// one) are the expected outcome of a hostile input and are swallowed by expect_clean_error; anything else — a
// crash, a sanitizer report, another exception type (which the CLI would print as "internal error", exit 70), an
// allocation beyond libFuzzer's -malloc_limit_mb — is a finding.
//
// The same source builds into a libFuzzer executable (SLMOPT_LIBFUZZER defined: the macro defines
// LLVMFuzzerTestOneInput) and into slmopt_fuzz_replay (the macro registers the function by name), which replays
// the saved corpus in every ordinary build.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "slmopt/core/error.h"

namespace slmopt::fuzz {

using TargetFn = int (*)(const uint8_t* data, size_t size);
std::map<std::string, TargetFn>& targets();
bool register_target(const char* name, TargetFn fn);

// A private folder for this process (created on first use, removed at exit) where harnesses write the input
// as the file a reader opens.
const std::string& scratch_dir();
// Writes the bytes to scratch_dir()/name and returns the path.
std::string write_scratch(const std::string& name, std::string_view bytes);
std::string_view as_text(const uint8_t* data, size_t size);

// Several files in one input: the parts between kPartSeparator lines (a folder harness maps part i to its
// i-th file name; missing parts are empty). The separator is in every multi-part dictionary.
inline constexpr std::string_view kPartSeparator = "\n--slmopt-part--\n";
std::vector<std::string_view> split_parts(std::string_view bytes, size_t max_parts);

// Runs `body`; an slmopt::Error is an accepted outcome, everything else propagates.
template <typename F>
void expect_clean_error(F&& body) {
  try {
    body();
  } catch (const slmopt::Error&) {
  }
}

}  // namespace slmopt::fuzz

#ifdef SLMOPT_LIBFUZZER
#define SLMOPT_FUZZ_TARGET(name) extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
#else
#define SLMOPT_FUZZ_TARGET(name)                                                                         \
  static int slmopt_fuzz_##name(const uint8_t* data, size_t size);                                      \
  [[maybe_unused]] static const bool slmopt_fuzz_registered_##name =                                    \
      ::slmopt::fuzz::register_target(#name, slmopt_fuzz_##name);                                       \
  static int slmopt_fuzz_##name(const uint8_t* data, size_t size)
#endif
