// Header-only (the consumer binary globs only *_test.cpp). Running tests/consumers/ort_harness.mjs (ONNX Runtime
// through onnxruntime-node) from GoogleTest: locating node and the installed package, writing token files, parsing the
// harness's JSON and reading its logits.
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "slmopt/exec/matrix.h"
#include "source_dir.h"

namespace slmopt::testing {

namespace ort_detail {

inline std::string run_command(const std::string& cmd, int& status) {
  std::string out;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) throw std::runtime_error("cannot run: " + cmd);
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  status = ::pclose(pipe);
  return out;
}

}  // namespace ort_detail

inline bool consumers_skipped() {
  const char* env = std::getenv("SLMOPT_SKIP_CONSUMERS");
  return env && std::string(env) == "1";
}

inline std::string ort_unavailable_reason() {
  int status = 0;
  ort_detail::run_command("node --version > /dev/null 2>&1", status);
  if (status != 0) return "node is not on PATH (ONNX Runtime consumer checks need Node.js 18+)";
  const auto pkg =
      std::filesystem::path(testing::source_dir()) / "tests/consumers/node_modules/onnxruntime-node/package.json";
  if (!std::filesystem::exists(pkg)) return pkg.string() + " is missing: run `npm ci` in tests/consumers";
  return "";
}

inline nlohmann::json run_ort_harness(const std::string& args) {
  const std::string harness = testing::source_dir() + "/tests/consumers/ort_harness.mjs";
  int status = 0;
  const std::string out = ort_detail::run_command("node '" + harness + "' " + args + " 2>&1", status);
  if (status != 0) throw std::runtime_error("ort_harness " + args + " failed:\n" + out);
  const size_t line = out.rfind('{');
  if (line == std::string::npos) throw std::runtime_error("ort_harness printed no JSON:\n" + out);
  return nlohmann::json::parse(out.substr(line));
}

inline void write_token_json(const std::string& path, const std::vector<int32_t>& ids) {
  std::ofstream f(path);
  f << nlohmann::json(ids).dump();
}

inline RowMatrix read_logits(const std::string& path, int64_t rows, int64_t cols) {
  std::ifstream f(path, std::ios::binary);
  RowMatrix m(rows, cols);
  f.read(reinterpret_cast<char*>(m.data()), static_cast<std::streamsize>(m.size() * sizeof(float)));
  if (f.gcount() != static_cast<std::streamsize>(m.size() * sizeof(float)))
    throw std::runtime_error(path + ": expected " + std::to_string(m.size()) + " float32 logits");
  return m;
}

}  // namespace slmopt::testing

// Skips (SLMOPT_SKIP_CONSUMERS=1) or fails with a clear message when ONNX Runtime cannot be run.
#define SLMOPT_REQUIRE_ORT()                                                     \
  do {                                                                           \
    const std::string why = ::slmopt::testing::ort_unavailable_reason();         \
    if (!why.empty()) {                                                          \
      if (::slmopt::testing::consumers_skipped()) GTEST_SKIP() << why;           \
      FAIL() << why << " (set SLMOPT_SKIP_CONSUMERS=1 to skip consumer checks)"; \
    }                                                                            \
  } while (0)
