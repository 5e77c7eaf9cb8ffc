#include "test_support.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <unistd.h>

namespace slmopt::testing {

static std::string source_dir() {
  if (const char* env = std::getenv("SLMOPT_SOURCE_DIR")) return env;
  return SLMOPT_SOURCE_DIR;
}

std::string model_path(const std::string& relative) { return source_dir() + "/models/" + relative; }
std::string data_path(const std::string& file) { return source_dir() + "/models/data/" + file; }

// Every scratch folder of a test process lives under one root, <temp>/slmopt_test_<pid>, which is removed when
// the process exits unless a test failed or SLMOPT_KEEP_TEST_FILES=1 (then its path is printed). The root is
// also the TMPDIR of everything the test starts: onnxruntime-node writes a mat-debug-<pid>.log (its telemetry
// SDK's trace file) and a .ses file into the temp folder of every process that loads it, and slmopt's own temp
// folders land there too, so nothing a test run makes outlives it.
namespace {
class ProcessScratch {
 public:
  ProcessScratch() {
    // GoogleTest's UnitTest is a function-local static too: made first, it is destroyed after this object, whose
    // destructor asks it whether a test failed.
    ::testing::UnitTest::GetInstance();
    root_ = std::filesystem::temp_directory_path() / ("slmopt_test_" + std::to_string(::getpid()));
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);
    ::setenv("TMPDIR", root_.c_str(), 1);
  }
  ProcessScratch(const ProcessScratch&) = delete;
  ProcessScratch& operator=(const ProcessScratch&) = delete;
  ~ProcessScratch() {
    const char* keep = std::getenv("SLMOPT_KEEP_TEST_FILES");
    const bool failed = ::testing::UnitTest::GetInstance()->Failed();
    if ((keep != nullptr && std::string(keep) == "1") || failed) {
      if (!std::filesystem::is_empty(root_))
        std::fprintf(stderr, "test: kept the scratch files in %s (%s)\n", root_.c_str(),
                     failed ? "a test failed" : "SLMOPT_KEEP_TEST_FILES=1");
      return;
    }
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }
  const std::filesystem::path& root() const { return root_; }

 private:
  std::filesystem::path root_;
};

const ProcessScratch& process_scratch() {
  static const ProcessScratch scratch;
  return scratch;
}

// Made before main(), so that TMPDIR is set before any test starts a process.
[[maybe_unused]] const bool process_scratch_made = (process_scratch(), true);
}  // namespace

std::string scratch_dir(const std::string& name) {
  const auto dir = process_scratch().root() / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

}  // namespace slmopt::testing

#include <array>
#include <cstdio>
#include <stdexcept>
#include <sys/wait.h>

namespace slmopt::testing {

static std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') q.append("'\\''");
    else q.push_back(c);
  }
  q.push_back('\'');
  return q;
}

std::string run_node_script(const std::string& script, const std::vector<std::string>& args) {
  std::string cmd = "node " + shell_quote(source_dir() + "/tests/consumers/" + script);
  for (const auto& a : args) {
    cmd.push_back(' ');
    cmd += shell_quote(a);
  }
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) throw std::runtime_error("cannot run: " + cmd);
  std::string out;
  std::array<char, 65536> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  const int status = ::pclose(pipe);
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("node failed (status " + std::to_string(status) + "): " + cmd);
  return out;
}

bool consumer_installed(const std::string& package) {
  return std::filesystem::exists(source_dir() + "/tests/consumers/node_modules/" + package + "/package.json");
}

}  // namespace slmopt::testing
