// Helpers shared by unit tests: paths to the bundled models and texts, scratch folders.
#pragma once

#include <cstdlib>
#include <string>

namespace slmopt::testing {

// <repo>/models/<relative>
std::string model_path(const std::string& relative);
// <repo>/models/data/<file>
std::string data_path(const std::string& file);
// A fresh, empty folder <temp>/slmopt_test_<pid>/<name>, removed when the test process exits (kept when a test
// failed or SLMOPT_KEEP_TEST_FILES=1; see test_support.cpp).
std::string scratch_dir(const std::string& name);

}  // namespace slmopt::testing

#include <vector>

namespace slmopt::testing {

// Runs `node <repo>/tests/consumers/<script> args...` and returns its stdout; FAILs the calling test (via an
// exception caught by GoogleTest) when node exits non-zero. Arguments are shell-quoted.
std::string run_node_script(const std::string& script, const std::vector<std::string>& args);

// True when the npm consumers are installed (tests/consumers/node_modules/<package>). Consumer tests call
// require_consumer(): a missing consumer fails the test with a clear message, unless SLMOPT_SKIP_CONSUMERS=1,
// which turns it into a skip.
bool consumer_installed(const std::string& package);

}  // namespace slmopt::testing

// Use at the top of a consumer test body.
#define SLMOPT_REQUIRE_CONSUMER(package)                                                                     \
  do {                                                                                                       \
    if (!::slmopt::testing::consumer_installed(package)) {                                                   \
      if (const char* skip = std::getenv("SLMOPT_SKIP_CONSUMERS"); skip && std::string(skip) == "1")         \
        GTEST_SKIP() << package << " is not installed (SLMOPT_SKIP_CONSUMERS=1)";                            \
      FAIL() << package << " is not installed in tests/consumers/node_modules: run scripts/setup.sh";        \
    }                                                                                                        \
  } while (0)
