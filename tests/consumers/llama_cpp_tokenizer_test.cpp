// llama.cpp's tokenizer (node-llama-cpp) against slmopt's:
//  * on a vocabulary-only GGUF that slmopt writes from each real tokenizer.json (the tokenizer.ggml.* keys,
//    pre-tokenizer name included, exactly as slmopt writes them into model files), on every line and the whole
//    of each bundled text and llama.cpp's 46 test texts: llama.cpp must give slmopt's ids;
//  * on llama.cpp's own test vocabularies (models/tokenizers/llamacpp), where it must reproduce its .out files
//    (so the reference the unit tests compare slmopt with is what this llama.cpp build does).
#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "slmopt/core/atomic_file.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/io/gguf_vocab.h"
#include "slmopt/io/hf_tokenizer.h"
#include "slmopt/ir/vocab.h"
#include "slmopt/text/tokenizer.h"
#include "test_support.h"
#include "tokenizer_texts.h"

namespace slmopt {
namespace {

// llama.cpp's ids for every text, through llama_cpp_tokenize.mjs.
std::vector<std::vector<int32_t>> llama_cpp_ids(const std::string& gguf, const std::vector<std::string>& texts,
                                                const std::string& scratch) {
  const std::string texts_file = scratch + "/texts.json";
  write_file_atomic(texts_file, nlohmann::json(texts).dump());
  std::istringstream lines(testing::run_node_script("llama_cpp_tokenize.mjs", {gguf, texts_file}));
  std::vector<std::vector<int32_t>> out;
  for (std::string line; std::getline(lines, line);)
    out.push_back(nlohmann::json::parse(line).get<std::vector<int32_t>>());
  return out;
}

class LlamaCppOnSlmoptGguf : public ::testing::TestWithParam<testing::TokenizerFolder> {};

TEST_P(LlamaCppOnSlmoptGguf, GivesSlmoptsIds) {
  SLMOPT_REQUIRE_CONSUMER("node-llama-cpp");
  const testing::TokenizerFolder& folder = GetParam();
  if (folder.dir.empty()) {
    GTEST_SKIP() << folder.name << ": shared/tokenizers/" << folder.name
                 << "/tokenizer.json is missing (not bundled: licence or size); this check did not run";
  }
  const Vocab vocab = load_hf_vocab(folder.dir + "/tokenizer.json", folder.dir + "/tokenizer_config.json");
  const Tokenizer tokenizer(vocab);
  const std::string scratch = testing::scratch_dir("llama_cpp_tok_" + folder.name);
  const std::string gguf = scratch + "/vocab.gguf";
  write_gguf_vocab(vocab, gguf);

  // GGUF's add_space_prefix makes llama.cpp put "▁" before every text; a Metaspace pre-tokenizer (Mistral's
  // prepend_scheme "first") adds none to a text that already starts with a space. For such texts llama.cpp's ids
  // must be slmopt's ids of the text with one more leading space — the only difference allowed.
  bool metaspace = false;
  for (const PreTokenizerStep& step : effective_pipeline(vocab).pre_tokenizers)
    metaspace |= step.kind == PreTokenizerStep::Kind::Metaspace;

  const std::vector<std::string> texts = testing::cross_check_texts();
  const auto reference = llama_cpp_ids(gguf, texts, scratch);
  ASSERT_EQ(reference.size(), texts.size());
  size_t equal = 0, prefixed = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const bool extra_prefix = metaspace && texts[i].starts_with(' ');
    const auto got = tokenizer.encode(extra_prefix ? " " + texts[i] : texts[i], /*add_special=*/false);
    if (got == reference[i]) {
      ++equal;
      prefixed += extra_prefix;
    } else if (i + 1 - equal <= 3) {
      ADD_FAILURE() << folder.name << " text " << i << " '" << texts[i].substr(0, 200)
                    << "': slmopt " << testing::ids_to_string(got).substr(0, 300) << ", llama.cpp "
                    << testing::ids_to_string(reference[i]).substr(0, 300);
    }
  }
  EXPECT_EQ(equal, texts.size()) << folder.name << ": " << equal << " of " << texts.size() << " texts agree";
  std::printf("[ %-7s ] llama.cpp on slmopt's GGUF (tokenizer.ggml.pre '%s'): %zu / %zu texts agree (%zu of them "
              "starting with a space, where llama.cpp adds a second \"\u2581\")\n",
              folder.name.c_str(), load_gguf_vocab(gguf).pre.c_str(), equal, texts.size(), prefixed);
}

INSTANTIATE_TEST_SUITE_P(Families, LlamaCppOnSlmoptGguf, ::testing::ValuesIn(testing::tokenizer_folders()),
                         [](const auto& param_info) { return param_info.param.name; });

TEST(LlamaCppOwnVocabularies, ReproduceTheirReferenceIds) {
  SLMOPT_REQUIRE_CONSUMER("node-llama-cpp");
  for (const char* name : {"llama-spm", "phi-3", "gpt-2", "falcon", "mpt", "starcoder", "deepseek-coder",
                           "deepseek-llm"}) {
    const std::string base = testing::model_path("tokenizers/llamacpp/ggml-vocab-") + name + ".gguf";
    const std::vector<std::string> texts = testing::read_llama_cpp_inp(base + ".inp");
    const auto got = llama_cpp_ids(base, texts, testing::scratch_dir(std::string("llama_cpp_own_") + name));
    std::istringstream out(read_text_file(base + ".out"));
    size_t i = 0;
    for (std::string line; std::getline(out, line); ++i) {
      std::istringstream ids(line);
      std::vector<int32_t> expected;
      for (int32_t id; ids >> id;) expected.push_back(id);
      ASSERT_LT(i, got.size()) << name;
      EXPECT_EQ(got[i], expected) << name << " text " << i << " '" << texts[i] << "'";
    }
    EXPECT_EQ(i, texts.size()) << name;
  }
}

}  // namespace
}  // namespace slmopt
