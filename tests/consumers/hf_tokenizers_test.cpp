// slmopt's tokenizer against Hugging Face's own JavaScript implementation (@huggingface/tokenizers): on every
// line and on the whole of the bundled eval texts for both bundled model tokenizers (SentencePiece-style with
// byte fallback, and GPT-2 byte-level), and for every real tokenizer.json of the supported families (Llama-2,
// Mistral, GPT-2, Phi-2, SmolLM, Gemma-3) on every line and the whole of each bundled text plus llama.cpp's 46
// tokenizer test texts.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <cstdio>
#include <sstream>

#include "slmopt/core/atomic_file.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/io/hf_tokenizer.h"
#include "slmopt/text/tokenizer.h"
#include "test_support.h"
#include "tokenizer_texts.h"

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

class HfTokenizersRealTokenizers : public ::testing::TestWithParam<testing::TokenizerFolder> {};

TEST_P(HfTokenizersRealTokenizers, EveryTextGivesTheSameIds) {
  SLMOPT_REQUIRE_CONSUMER("@huggingface/tokenizers");
  const testing::TokenizerFolder& folder = GetParam();
  if (folder.dir.empty()) {
    GTEST_SKIP() << folder.name << ": shared/tokenizers/" << folder.name
                 << "/tokenizer.json is missing (not bundled: licence or size); this check did not run";
  }
  const Tokenizer tokenizer(load_hf_vocab(folder.dir + "/tokenizer.json", folder.dir + "/tokenizer_config.json"));
  const std::vector<std::string> texts = testing::cross_check_texts();
  const std::string texts_file = testing::scratch_dir("hf_real_" + folder.name) + "/texts.json";
  write_file_atomic(texts_file, nlohmann::json(texts).dump());
  std::istringstream reference(
      testing::run_node_script("hf_tokenizers_reference.mjs", {folder.dir + "/tokenizer.json", texts_file, "--texts"}));
  size_t compared = 0, equal = 0;
  for (std::string ref_line; std::getline(reference, ref_line);) {
    ASSERT_LT(compared, texts.size());
    const auto expected = nlohmann::json::parse(ref_line).get<std::vector<int32_t>>();
    const auto got = tokenizer.encode(texts[compared], /*add_special=*/false);
    if (got == expected) {
      ++equal;
    } else if (compared - equal < 3) {
      ADD_FAILURE() << folder.name << " text " << compared << " '" << texts[compared].substr(0, 200)
                    << "': " << testing::ids_to_string(got).substr(0, 300) << " instead of "
                    << testing::ids_to_string(expected).substr(0, 300);
    }
    ++compared;
  }
  EXPECT_EQ(compared, texts.size());
  EXPECT_EQ(equal, compared) << folder.name << ": " << equal << " of " << compared << " texts agree";
  std::printf("[ %-7s ] Hugging Face agreement: %zu / %zu texts\n", folder.name.c_str(), equal, compared);
}

INSTANTIATE_TEST_SUITE_P(Families, HfTokenizersRealTokenizers, ::testing::ValuesIn(testing::tokenizer_folders()),
                         [](const auto& param_info) { return param_info.param.name; });

}  // namespace
}  // namespace slmopt
