// slmopt's tokenizer against Hugging Face's own JavaScript implementation (@huggingface/tokenizers), on every
// line and on the whole of the bundled eval texts, for both bundled tokenizers (SentencePiece-style with
// byte fallback, and GPT-2 byte-level).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "slmopt/core/mapped_file.h"
#include "slmopt/io/hf_tokenizer.h"
#include "slmopt/text/tokenizer.h"
#include "test_support.h"

namespace slmopt {
namespace {

using testing::data_path;
using testing::model_path;

struct Case {
  const char* model;
  const char* text;
};

class HfTokenizersAgreement : public ::testing::TestWithParam<Case> {};

TEST_P(HfTokenizersAgreement, EveryLineAndTheWholeFileGiveTheSameIds) {
  SLMOPT_REQUIRE_CONSUMER("@huggingface/tokenizers");
  const Case c = GetParam();
  const std::string dir = model_path(c.model);
  const Tokenizer tokenizer(load_hf_vocab(dir + "/tokenizer.json", dir + "/tokenizer_config.json"));
  const std::string text_file = data_path(c.text);
  const std::string text = read_text_file(text_file);

  std::istringstream reference(testing::run_node_script("hf_tokenizers_reference.mjs", {dir + "/tokenizer.json", text_file}));
  std::istringstream lines(text + "\n");
  std::string line, ref_line;
  int64_t compared = 0, equal = 0;
  while (std::getline(reference, ref_line)) {
    ASSERT_TRUE(static_cast<bool>(std::getline(lines, line)));
    const auto expected = nlohmann::json::parse(ref_line).get<std::vector<int32_t>>();
    const auto got = tokenizer.encode(line, /*add_special=*/false);
    ++compared;
    if (got == expected) ++equal;
    else if (compared - equal <= 3) ADD_FAILURE() << "line " << compared << ": '" << line << "'";
  }
  EXPECT_GT(compared, 300);
  EXPECT_EQ(equal, compared);

  const auto whole = nlohmann::json::parse(
      testing::run_node_script("hf_tokenizers_reference.mjs", {dir + "/tokenizer.json", text_file, "--whole"}));
  EXPECT_EQ(tokenizer.encode(text, false), whole.get<std::vector<int32_t>>());
}

INSTANTIATE_TEST_SUITE_P(BundledModels, HfTokenizersAgreement,
                         ::testing::Values(Case{"tinystories-656k", "tinystories-eval.txt"},
                                           Case{"tinystories-656k", "kjv-eval.txt"},
                                           Case{"llama-5m-kjv", "kjv-eval.txt"},
                                           Case{"llama-5m-kjv", "tinystories-eval.txt"}),
                         [](const auto& param_info) {
                           std::string n = std::string(param_info.param.model) + "_" + param_info.param.text;
                           for (char& ch : n)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace slmopt
