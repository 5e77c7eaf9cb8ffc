#include "slmopt/io/hf_tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "slmopt/core/atomic_file.h"
#include "slmopt/core/error.h"
#include "test_support.h"

namespace slmopt {
namespace {

using testing::model_path;

Vocab load_tinystories() {
  return load_hf_vocab(model_path("tinystories-656k/tokenizer.json"),
                       model_path("tinystories-656k/tokenizer_config.json"));
}
Vocab load_kjv() {
  return load_hf_vocab(model_path("llama-5m-kjv/tokenizer.json"), model_path("llama-5m-kjv/tokenizer_config.json"));
}

// Writes `text` to <scratch>/<name> and returns the path.
std::string write_scratch(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  write_file_atomic(path, text);
  return path;
}

// Expects load_hf_vocab to throw `kind` with a message containing every one of `needles`.
void expect_load_error(const std::string& json_text, ErrorKind kind, std::initializer_list<std::string> needles) {
  const std::string dir = testing::scratch_dir("hf_tokenizer_errors");
  const std::string path = write_scratch(dir, "tokenizer.json", json_text);
  try {
    load_hf_vocab(path, "");
    ADD_FAILURE() << "no error for " << json_text;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    for (const std::string& needle : needles) EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(HfTokenizer, LoadsTinyStoriesSentencePieceStyle) {
  const Vocab v = load_tinystories();
  EXPECT_EQ(v.kind, VocabKind::SentencePieceBpe);
  ASSERT_EQ(v.size(), 2048);
  EXPECT_EQ(v.merges.size(), 1967u);
  EXPECT_EQ(v.merges[0], "e \xE2\x96\x81");  // "e ▁"
  EXPECT_EQ(v.tokens[80], "\xE2\x96\x81");
  EXPECT_EQ(v.tokens[3], "\n");
  EXPECT_TRUE(v.add_prefix_space);
  EXPECT_EQ(v.prefix_scheme, PrefixScheme::Always);
  EXPECT_TRUE(v.byte_fallback);
  EXPECT_TRUE(v.fuse_unk);
  EXPECT_FALSE(v.ignore_merges);
  // models/tinystories-656k/config.json: bos_token_id 1, eos_token_id 2; tokenizer_config: pad = unk = <unk>.
  EXPECT_EQ(v.bos_id, 1);
  EXPECT_EQ(v.eos_id, 2);
  EXPECT_EQ(v.unk_id, 0);
  EXPECT_EQ(v.pad_id, 0);
  EXPECT_TRUE(v.add_bos);
  EXPECT_FALSE(v.add_eos);
  EXPECT_EQ(v.types[0], TokenType::Unknown);
  EXPECT_EQ(v.types[1], TokenType::Control);
  EXPECT_EQ(v.types[2], TokenType::Control);
  EXPECT_EQ(v.types[3], TokenType::Normal);
  EXPECT_EQ(v.normalized_added_ids, (std::vector<int32_t>{0, 1, 2}));
  // Scores for score-only consumers (GGUF "llama"): −rank of the token's first merge, below that for the
  // normal tokens no merge makes, 0 for the rest.
  ASSERT_EQ(v.scores.size(), 2048u);
  EXPECT_EQ(v.scores[81], 0.0f);   // "e▁": merge 0
  EXPECT_EQ(v.scores[82], -1.0f);  // "d▁": merge 1
  EXPECT_EQ(v.scores[53], -(1967.0f + 53.0f));  // "a"
  EXPECT_EQ(v.scores[1], 0.0f);
  EXPECT_FALSE(v.source_tokenizer_json.empty());
  EXPECT_FALSE(v.source_tokenizer_config_json.empty());
}

TEST(HfTokenizer, LoadsKjvByteLevel) {
  const Vocab v = load_kjv();
  EXPECT_EQ(v.kind, VocabKind::ByteLevelBpe);
  ASSERT_EQ(v.size(), 4096);
  EXPECT_EQ(v.merges.size(), 3839u);
  EXPECT_EQ(v.merges[0], "\xC4\xA0 t");  // "Ġ t"
  EXPECT_EQ(v.pre, "gpt-2");
  EXPECT_EQ(v.split_regex, kGpt2SplitRegex);
  EXPECT_FALSE(v.add_prefix_space);
  EXPECT_FALSE(v.byte_fallback);
  // models/llama-5m-kjv/config.json: bos_token_id = eos_token_id = 4095 (<|endoftext|>), no BOS added.
  EXPECT_EQ(v.bos_id, 4095);
  EXPECT_EQ(v.eos_id, 4095);
  EXPECT_EQ(v.unk_id, 4095);
  EXPECT_FALSE(v.pad_id.has_value());
  EXPECT_FALSE(v.add_bos);
  EXPECT_FALSE(v.add_eos);
  EXPECT_EQ(v.tokens[4095], "<|endoftext|>");
  EXPECT_EQ(v.types[4095], TokenType::Control);
  EXPECT_EQ(v.types[32], TokenType::Normal);
  EXPECT_TRUE(v.normalized_added_ids.empty());
  EXPECT_EQ(std::count(v.types.begin(), v.types.end(), TokenType::Byte), 0);
}

TEST(HfTokenizer, ReadsPairMergesByteTokensAndLlama3Split) {
  const std::string dir = testing::scratch_dir("hf_tokenizer_llama3");
  const std::string json = R"({
    "added_tokens": [{"id": 5, "content": "<|begin_of_text|>", "special": true},
                     {"id": 6, "content": "<tool>", "special": false, "normalized": false}],
    "normalizer": null,
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
       "behavior": "Isolated", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]},
    "post_processor": {"type": "Sequence", "processors": [
      {"type": "ByteLevel"},
      {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                                                {"Sequence": {"id": "A", "type_id": 0}}]}]},
    "model": {"type": "BPE", "ignore_merges": true,
              "vocab": {"a": 0, "b": 1, "ab": 2, "<0x41>": 3, "abab": 4},
              "merges": [["a", "b"], ["ab", "ab"]]}})";
  const std::string config = R"({"bos_token": {"content": "<|begin_of_text|>"}, "eos_token": "<|begin_of_text|>",
                                  "chat_template": [{"name": "tool_use", "template": "T"},
                                                    {"name": "default", "template": "D"}]})";
  const Vocab v = load_hf_vocab(write_scratch(dir, "tokenizer.json", json),
                                write_scratch(dir, "tokenizer_config.json", config));
  EXPECT_EQ(v.kind, VocabKind::ByteLevelBpe);
  EXPECT_EQ(v.pre, "llama-bpe");
  EXPECT_EQ(v.split_regex, kLlama3SplitRegex);
  EXPECT_TRUE(v.ignore_merges);
  EXPECT_EQ(v.merges, (std::vector<std::string>{"a b", "ab ab"}));
  ASSERT_EQ(v.size(), 7);
  EXPECT_EQ(v.types[3], TokenType::Normal);  // <0xNN> is a byte token only in SentencePiece style
  EXPECT_EQ(v.types[5], TokenType::Control);
  EXPECT_EQ(v.types[6], TokenType::UserDefined);
  EXPECT_TRUE(v.normalized_added_ids.empty());
  EXPECT_EQ(v.bos_id, 5);
  EXPECT_TRUE(v.add_bos);  // from the post-processor template; the config does not override it
  EXPECT_EQ(v.chat_template, "D");
}

TEST(HfTokenizer, ReadsMetaspaceFirstAndByteTokens) {
  const std::string dir = testing::scratch_dir("hf_tokenizer_metaspace");
  const std::string json = R"({
    "added_tokens": [{"id": 0, "content": "<unk>", "special": true}, {"id": 1, "content": "<s>", "special": true}],
    "normalizer": null,
    "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false},
    "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": true, "fuse_unk": true,
              "vocab": {"<unk>": 0, "<s>": 1, "<0x0A>": 2, "▁": 3, "a": 4, "▁a": 5},
              "merges": ["▁ a"]}})";
  const Vocab v = load_hf_vocab(write_scratch(dir, "tokenizer.json", json), dir + "/missing_config.json");
  EXPECT_EQ(v.kind, VocabKind::SentencePieceBpe);
  EXPECT_TRUE(v.add_prefix_space);
  EXPECT_EQ(v.prefix_scheme, PrefixScheme::FirstIfMissing);
  EXPECT_EQ(v.types[0], TokenType::Unknown);
  EXPECT_EQ(v.types[2], TokenType::Byte);
  EXPECT_FALSE(v.add_bos);
  EXPECT_FALSE(v.bos_id.has_value());
  EXPECT_TRUE(v.source_tokenizer_config_json.empty());
}

TEST(HfTokenizer, RefusesBadFilesNamingThem) {
  expect_load_error("{\"model\": ", ErrorKind::BadInput, {"invalid JSON"});
  expect_load_error("[1, 2]", ErrorKind::BadInput, {"not a JSON object"});
  expect_load_error("{\"version\": \"1.0\"}", ErrorKind::BadInput, {"\"model\""});
  expect_load_error(R"({"model": {"type": "WordPiece", "vocab": {}}})", ErrorKind::Unsupported, {"WordPiece"});
  expect_load_error(R"({"model": {"type": "Unigram", "vocab": []}})", ErrorKind::Unsupported, {"Unigram"});
  expect_load_error(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 0}, "merges": []},
                        "pre_tokenizer": {"type": "ByteLevel"}})",
                    ErrorKind::BadInput, {"vocab id 0"});
  expect_load_error(R"({"model": {"type": "BPE", "vocab": {"a": -3}, "merges": []}})", ErrorKind::BadInput,
                    {"out of range"});
  expect_load_error(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]},
                        "pre_tokenizer": {"type": "ByteLevel"}})",
                    ErrorKind::BadInput, {"merge 0"});
  expect_load_error(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a  a"]}})", ErrorKind::BadInput,
                    {"merge 0"});
  expect_load_error(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
                        "normalizer": {"type": "Lowercase"}})",
                    ErrorKind::Unsupported, {"Lowercase"});
  expect_load_error(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
                        "pre_tokenizer": {"type": "Whitespace"}})",
                    ErrorKind::Unsupported, {"Whitespace"});
  expect_load_error(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})", ErrorKind::Unsupported,
                    {"neither"});
}

// model.vocab and model.merges are streamed out of the parse (json_strict.h), so the checks the DOM parser made on
// them — a repeated key, a member given twice — are made by the reader, with the same errors.
TEST(HfTokenizer, StreamedVocabAndMergesKeepTheParsersChecks) {
  const char* style = R"("pre_tokenizer": {"type": "ByteLevel"})";
  expect_load_error(std::string(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "a": 2}, "merges": []}, )") +
                        style + "}",
                    ErrorKind::BadInput, {"duplicate vocab token 'a' (ids 0 and 2)"});
  expect_load_error(std::string(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "vocab": {"b": 0}, "merges": []}, )") +
                        style + "}",
                    ErrorKind::BadInput, {"duplicate key 'vocab'"});
  expect_load_error(std::string(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "merges": []}, )") +
                        style + "}",
                    ErrorKind::BadInput, {"duplicate key 'merges'"});
  expect_load_error(std::string(R"({"model": {"type": "BPE", "vocab": {"a": 1e400}, "merges": []}, )") + style + "}",
                    ErrorKind::BadInput, {"the value of 'a' is a number out of range"});
  expect_load_error(std::string(R"({"model": {"type": "BPE", "vocab": ["a", 0], "merges": []}, )") + style + "}",
                    ErrorKind::BadInput, {"no \"vocab\" object"});
  expect_load_error(std::string(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": {"a": "a"}}, )") + style +
                        "}",
                    ErrorKind::BadInput, {"needs an array \"merges\""});
  // A token repeated through added_tokens (same text, another id) is not a duplicate: its first id wins.
  const std::string dir = testing::scratch_dir("hf_tokenizer_streamed");
  const Vocab v = load_hf_vocab(
      write_scratch(dir, "tokenizer.json",
                    std::string(R"({"added_tokens": [{"id": 3, "content": "ab", "special": false}],
                                    "model": {"type": "BPE", "vocab": {"b": 1, "ab": 2, "a": 0},
                                              "merges": [["a", "b"]]}, )") +
                        style + "}"),
      "");
  ASSERT_EQ(v.size(), 4);
  EXPECT_EQ(v.tokens, (std::vector<std::string>{"a", "b", "ab", "ab"}));
  EXPECT_EQ(v.merges, (std::vector<std::string>{"a b"}));
}

// A vocabulary without source texts (as read from GGUF) is written out and read back unchanged.
void expect_round_trip(Vocab v, const std::string& name) {
  v.source_tokenizer_json.clear();
  v.source_tokenizer_config_json.clear();
  const std::string dir = testing::scratch_dir("hf_tokenizer_" + name);
  const Vocab back = load_hf_vocab(write_scratch(dir, "tokenizer.json", hf_tokenizer_json(v)),
                                   write_scratch(dir, "tokenizer_config.json", hf_tokenizer_config_json(v)));
  EXPECT_EQ(back.kind, v.kind);
  EXPECT_EQ(back.tokens, v.tokens);
  EXPECT_EQ(back.types, v.types);
  EXPECT_EQ(back.merges, v.merges);
  EXPECT_EQ(back.bos_id, v.bos_id);
  EXPECT_EQ(back.eos_id, v.eos_id);
  EXPECT_EQ(back.unk_id, v.unk_id);
  EXPECT_EQ(back.pad_id, v.pad_id);
  EXPECT_EQ(back.add_bos, v.add_bos);
  EXPECT_EQ(back.add_eos, v.add_eos);
  EXPECT_EQ(back.add_prefix_space, v.add_prefix_space);
  EXPECT_EQ(back.prefix_scheme, v.prefix_scheme);
  EXPECT_EQ(back.byte_fallback, v.byte_fallback);
  EXPECT_EQ(back.split_regex, v.split_regex);
  EXPECT_EQ(back.pre, v.pre);
  EXPECT_EQ(back.normalized_added_ids, v.normalized_added_ids);
  EXPECT_EQ(back.chat_template, v.chat_template);
}

TEST(HfTokenizer, SynthesisedFilesRoundTrip) {
  expect_round_trip(load_tinystories(), "tinystories");
  expect_round_trip(load_kjv(), "kjv");
  // Vocabularies described only by the shorthand fields (as GGUF describes them).
  Vocab metaspace = load_tinystories();
  metaspace.pipeline.reset();
  metaspace.prefix_scheme = PrefixScheme::FirstIfMissing;
  metaspace.chat_template = "{{ messages }}";
  metaspace.add_eos = true;
  expect_round_trip(metaspace, "metaspace");
  Vocab qwen = load_kjv();
  qwen.pipeline.reset();
  qwen.split_regex = kQwen2SplitRegex;
  qwen.pre = "qwen2";
  qwen.add_bos = true;
  expect_round_trip(qwen, "qwen");
}

TEST(HfTokenizer, SynthesisesMergesFromScoresForGgufSentencePiece) {
  // As GGUF's "llama" model stores it: scores, no merges. "▁ab" (score -1) beats "ab" (-2) beats "▁a" (-3).
  Vocab v;
  v.kind = VocabKind::SentencePieceBpe;
  v.tokens = {"<unk>", "<s>", "\xE2\x96\x81", "a", "b", "ab", "\xE2\x96\x81" "a", "\xE2\x96\x81" "ab"};
  v.scores = {0, 0, -10, -10, -10, -2, -3, -1};
  v.types = {TokenType::Unknown, TokenType::Control, TokenType::Normal, TokenType::Normal,
             TokenType::Normal,  TokenType::Normal,  TokenType::Normal, TokenType::Normal};
  v.unk_id = 0;
  v.bos_id = 1;
  v.add_bos = true;
  v.add_prefix_space = true;
  v.byte_fallback = true;
  EXPECT_EQ(merges_from_scores(v), (std::vector<std::string>{"\xE2\x96\x81 ab", "\xE2\x96\x81" "a b", "a b",
                                                             "\xE2\x96\x81 a"}));
  const std::string dir = testing::scratch_dir("hf_tokenizer_scores");
  const Vocab back = load_hf_vocab(write_scratch(dir, "tokenizer.json", hf_tokenizer_json(v)),
                                   write_scratch(dir, "tokenizer_config.json", hf_tokenizer_config_json(v)));
  EXPECT_EQ(back.merges, merges_from_scores(v));
  EXPECT_EQ(back.tokens, v.tokens);
  EXPECT_TRUE(back.add_bos);
  EXPECT_EQ(back.bos_id, 1);
}

}  // namespace
}  // namespace slmopt
