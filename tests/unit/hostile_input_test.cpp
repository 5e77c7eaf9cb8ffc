// Hostile inputs (issue 12) that the file-level cases of tests/integration/hostile_test.sh cannot reach: size
// arithmetic on shapes and configs, and output folders whose guessable temporary names are taken by someone else.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <string>

#include "slmopt/core/error.h"
#include "slmopt/io/hf.h"
#include "slmopt/ir/config_limits.h"
#include "slmopt/ir/tensor.h"
#include "synthetic_llama.h"
#include "test_support.h"

namespace slmopt {
namespace {

namespace fs = std::filesystem;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput) << e.what();
    return e.what();
  }
  return "no error";
}

TEST(HostileInput, ShapeProductsThatWrapAreRefused) {
  // 2^62 F32 elements are 2^64 bytes: the product used to wrap to 0, which an empty file satisfies.
  EXPECT_NE(error_of([] { Tensor::bytes_for({int64_t{1} << 62}, DType::F32); }).find("too large"), std::string::npos);
  EXPECT_NE(error_of([] { Tensor::bytes_for({int64_t{1} << 32, int64_t{1} << 32, 4}, DType::F16); }).find("too large"),
            std::string::npos);
  EXPECT_EQ(Tensor::bytes_for({3, 64}, DType::Q8_0), 3u * 2u * 34u);  // ordinary shapes unchanged
  EXPECT_EQ(Tensor::bytes_for({0, int64_t{1} << 40}, DType::F32), 0u);
}

TEST(HostileInput, ConfigSizesBeyondAnyModelAreRefusedNamingTheField) {
  Config c = testing::llama_config(64, 128, 1, 4, 2, 16, 50);
  c.validate("ok");
  c.num_layers = int64_t{1} << 31;
  EXPECT_NE(error_of([&] { c.validate("config.json"); }).find("config.json: num_hidden_layers 2147483648 is beyond"),
            std::string::npos);
  c = testing::llama_config(64, 128, 1, 4, 2, 16, 50);
  c.head_dim = int64_t{1} << 62;  // heads × head_dim would overflow int64
  EXPECT_NE(error_of([&] { check_config_sizes(c, "m.gguf"); }).find("head_dim"), std::string::npos);
}

// The temporary and set-aside folders of an HF write used to be ".NAME.tmp.<pid>" / ".NAME.old.<pid>", removed
// first if present: anything planted (or simply left) at that name was deleted, and a guessable name in a shared
// folder can be raced. Now they are fresh mkdtemp folders, and nothing slmopt did not create is touched.
TEST(HostileInput, HfWriteLeavesFoldersAtItsOldTemporaryNamesAlone) {
  const std::string dir = testing::scratch_dir("hostile_hf_temp");
  const std::string pid = std::to_string(::getpid());
  for (const char* kind : {".tmp.", ".old."}) {
    fs::create_directories(dir + "/.out" + kind + pid);
    std::ofstream(dir + "/.out" + kind + pid + "/precious.txt") << "not slmopt's";
  }
  const Model model = testing::make_random_llama(testing::llama_config(64, 128, 1, 4, 2, 16, 50), 1);
  write_hf_model(model, dir + "/out");
  write_hf_model(model, dir + "/out");  // replacing: the old output is set aside, then removed
  for (const char* kind : {".tmp.", ".old."})
    EXPECT_TRUE(fs::exists(dir + "/.out" + kind + pid + "/precious.txt")) << kind;
  EXPECT_TRUE(fs::exists(dir + "/out/model.safetensors"));
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++entries;
  EXPECT_EQ(entries, 3u) << "a temporary folder was left behind";
  // The output folder gets the permissions of an ordinary mkdir, not mkdtemp's 0700.
  fs::create_directory(dir + "/plain");
  EXPECT_EQ(fs::status(dir + "/out").permissions(), fs::status(dir + "/plain").permissions());
  fs::remove(dir + "/plain");
}

}  // namespace
}  // namespace slmopt
