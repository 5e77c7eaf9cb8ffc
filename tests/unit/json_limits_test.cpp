// Hostile JSON: deeply nested values in any JSON input slmopt reads are refused while parsing with one BadInput
// error (they used to overflow the stack in error messages and recursive copies: issue 12).
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <string>

#include "slmopt/core/error.h"
#include "slmopt/io/hf.h"
#include "slmopt/io/safetensors.h"
#include "test_support.h"

namespace slmopt {
namespace {

std::string nested_array(int depth) { return std::string(static_cast<size_t>(depth), '[') + "1" + std::string(static_cast<size_t>(depth), ']'); }

void expect_bad_input_mentioning(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(JsonLimits, DeepConfigValueIsBadInputNotACrash) {
  const std::string text = R"({"architectures": ["LlamaForCausalLM"], "hidden_size": )" + nested_array(1000000) + "}";
  expect_bad_input_mentioning([&] { parse_hf_config(text, "config.json"); }, "nesting deeper than");
}

TEST(JsonLimits, DeepSafetensorsShapeIsBadInput) {
  const std::string header = R"({"w": {"dtype": "F32", "shape": )" + nested_array(200000) + R"(, "data_offsets": [0, 4]}})";
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[static_cast<size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  bytes += header + std::string(4, '\0');
  const std::string path = testing::scratch_dir("json_limits") + "/deep.safetensors";
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  expect_bad_input_mentioning([&] { SafetensorsFile::open(path); }, "nesting deeper than");
}

// The limit is exact: the config object is level 1, so a value nested in 63 arrays (64 levels) parses and fails
// only for its type, and one more array is refused while parsing.
TEST(JsonLimits, DepthLimitIsSixtyFourLevels) {
  auto config_with = [](int arrays) {
    return R"({"architectures": ["LlamaForCausalLM"], "hidden_size": )" + nested_array(arrays) + "}";
  };
  try {
    parse_hf_config(config_with(63), "config.json");
    FAIL() << "a nested hidden_size loaded";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find("nesting deeper than"), std::string::npos) << e.what();
  }
  expect_bad_input_mentioning([&] { parse_hf_config(config_with(64), "config.json"); }, "nesting deeper than 64");
}

TEST(JsonLimits, OrdinaryNestingStillParses) {
  // rope_scaling is an object inside the config: depth 2, far below the limit.
  const std::string text = R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
    "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 10,
    "rope_scaling": {"rope_type": "linear", "factor": 2.0}})";
  EXPECT_EQ(parse_hf_config(text, "config.json").hidden_size, 64);
}

}  // namespace
}  // namespace slmopt
