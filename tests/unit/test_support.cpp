#include "test_support.h"

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

std::string scratch_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("slmopt_test_" + std::to_string(::getpid()) + "_" + name);
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
