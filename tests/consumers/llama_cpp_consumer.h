// Shared by the llama.cpp consumer tests (gguf_llama_cpp_test.cpp, gguf_gpt2_llama_cpp_test.cpp): where the
// harness lives, the skip/fail guard, a scratch folder removed on exit, and one call that runs llama.cpp on
// token windows and hands back its logits.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "slmopt/core/mapped_file.h"
#include "test_support.h"

namespace slmopt {

inline constexpr const char* kLlamaCppHarness = "llama_cpp_harness.mjs";

// Fails (or, with SLMOPT_SKIP_CONSUMERS=1, skips) the test when llama.cpp cannot be run.
#define REQUIRE_LLAMA_CPP()                                                                                    \
  do {                                                                                                         \
    SLMOPT_REQUIRE_CONSUMER("node-llama-cpp");                                                                 \
    SLMOPT_REQUIRE_CONSUMER("@node-llama-cpp/linux-x64");                                                      \
    ASSERT_TRUE(std::filesystem::exists(testing::source_dir() + "/tests/consumers/" + kLlamaCppHarness))       \
        << "tests/consumers/" << kLlamaCppHarness << " is missing";                                            \
  } while (0)

// Removes a scratch folder when it goes out of scope (the logits and GGUF files run to tens of megabytes).
struct RemovedOnExit {
  std::string path;
  ~RemovedOnExit() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

// llama.cpp's answer for a list of windows (each from position 0 with a fresh cache): the harness's JSON
// summary and the logits of every row of every window, [sum of window lengths, n_vocab] row-major.
struct LlamaCppEval {
  nlohmann::json summary;
  std::string logits_bytes;
  const float* logits() const { return reinterpret_cast<const float*>(logits_bytes.data()); }
};

inline LlamaCppEval llama_cpp_eval(const std::string& gguf_path, const std::vector<std::vector<int32_t>>& windows,
                                   const std::string& scratch) {
  std::ofstream(scratch + "/windows.json") << nlohmann::json(windows).dump();
  LlamaCppEval out;
  out.summary = nlohmann::json::parse(testing::run_node_script(
      kLlamaCppHarness, {"eval", gguf_path, scratch + "/windows.json", scratch + "/logits.bin"}));
  out.logits_bytes = read_text_file(scratch + "/logits.bin");
  return out;
}

}  // namespace slmopt
