// slmopt's tokenizer against llama.cpp's own reference tokenizations (models/tokenizers/llamacpp: the
// vocabulary-only GGUF files and NAME.gguf.inp / .out of llama.cpp's test-tokenizer-0), reading the vocabulary
// from the GGUF file and, where the project has the matching Hugging Face tokenizer.json, from that too.
// Every one of the 46 texts must give exactly llama.cpp's ids (no BOS/EOS, special-token text not parsed).
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "slmopt/core/mapped_file.h"
#include "slmopt/io/gguf_vocab.h"
#include "slmopt/io/hf_tokenizer.h"
#include "slmopt/text/tokenizer.h"
#include "test_support.h"
#include "tokenizer_texts.h"

namespace slmopt {
namespace {

using testing::model_path;

struct Case {
  const char* vocab;      // llama.cpp's name: ggml-vocab-<vocab>.gguf
  const char* hf_folder;  // models/tokenizers/<folder>/tokenizer.json with the same vocabulary, or nullptr
};

// The reference ids of each text of NAME.gguf.out (one line of space-separated ids per text).
std::vector<std::vector<int32_t>> read_out(const std::string& path) {
  std::vector<std::vector<int32_t>> out;
  std::istringstream lines(read_text_file(path));
  for (std::string line; std::getline(lines, line);) {
    std::istringstream ids(line);
    std::vector<int32_t>& row = out.emplace_back();
    for (int32_t id; ids >> id;) row.push_back(id);
  }
  return out;
}

// Compares every text; reports the first few differences with the text.
void expect_reference_ids(const Tokenizer& tokenizer, const std::vector<std::string>& texts,
                          const std::vector<std::vector<int32_t>>& expected, const std::string& what) {
  ASSERT_EQ(texts.size(), expected.size()) << what;
  int failures = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::vector<int32_t> got = tokenizer.encode(texts[i], /*add_special=*/false);
    if (got != expected[i] && ++failures <= 3) {
      ADD_FAILURE() << what << ": text " << i << " '" << texts[i] << "': " << testing::ids_to_string(got)
                    << " instead of " << testing::ids_to_string(expected[i]);
    }
  }
  EXPECT_EQ(failures, 0) << what << ": " << failures << " of " << texts.size() << " texts differ";
}

class LlamaCppReference : public ::testing::TestWithParam<Case> {};

TEST_P(LlamaCppReference, GgufVocabularyGivesLlamaCppIds) {
  const Case c = GetParam();
  const std::string base = model_path("tokenizers/llamacpp/ggml-vocab-") + c.vocab + ".gguf";
  const std::vector<std::string> texts = testing::read_llama_cpp_inp(base + ".inp");
  EXPECT_EQ(texts.size(), 46u);
  const Tokenizer tokenizer(load_gguf_vocab(base));
  expect_reference_ids(tokenizer, texts, read_out(base + ".out"), base);
}

TEST_P(LlamaCppReference, TokenizerJsonGivesLlamaCppIds) {
  const Case c = GetParam();
  if (c.hf_folder == nullptr) GTEST_SKIP() << "no tokenizer.json of this vocabulary in models/tokenizers";
  const std::string base = model_path("tokenizers/llamacpp/ggml-vocab-") + c.vocab + ".gguf";
  const std::string dir = model_path("tokenizers/") + c.hf_folder;
  const Tokenizer tokenizer(load_hf_vocab(dir + "/tokenizer.json", dir + "/tokenizer_config.json"));
  expect_reference_ids(tokenizer, testing::read_llama_cpp_inp(base + ".inp"), read_out(base + ".out"),
                       dir + "/tokenizer.json");
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, LlamaCppReference,
                         ::testing::Values(Case{"llama-spm", "llama2"}, Case{"phi-3", nullptr},
                                           Case{"gpt-2", "gpt2"}, Case{"falcon", nullptr}, Case{"mpt", nullptr},
                                           Case{"starcoder", nullptr}, Case{"deepseek-coder", nullptr},
                                           Case{"deepseek-llm", nullptr}),
                         [](const auto& param_info) {
                           std::string n = param_info.param.vocab;
                           for (char& ch : n)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace slmopt
