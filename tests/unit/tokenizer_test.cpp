#include "slmopt/text/tokenizer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "slmopt/core/error.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/io/hf_tokenizer.h"
#include "test_support.h"

namespace slmopt {
namespace {

using Ids = std::vector<int32_t>;
using testing::data_path;
using testing::model_path;

const std::string kSpace = "\xE2\x96\x81";  // "▁"

const Tokenizer& tinystories() {
  static const Tokenizer t(load_hf_vocab(model_path("tinystories-656k/tokenizer.json"),
                                         model_path("tinystories-656k/tokenizer_config.json")));
  return t;
}
const Tokenizer& kjv() {
  static const Tokenizer t(load_hf_vocab(model_path("llama-5m-kjv/tokenizer.json"),
                                         model_path("llama-5m-kjv/tokenizer_config.json")));
  return t;
}

std::vector<std::string> texts_of(const Tokenizer& t, const Ids& ids) {
  std::vector<std::string> out;
  for (const int32_t id : ids) out.push_back(t.token_text(id));
  return out;
}

const char* kSharedTexts[] = {"tinystories-calib.txt", "tinystories-eval.txt", "kjv-calib.txt", "kjv-eval.txt"};

// Ids below were produced by @huggingface/tokenizers 0.2.0 from the same tokenizer.json and checked by reading
// the tokens they name.

TEST(Tokenizer, TinyStoriesHandCheckedIds) {
  const Tokenizer& t = tinystories();
  const Ids once = t.encode("Once upon a time", false);
  EXPECT_EQ(once, (Ids{80, 147, 201, 282, 57}));
  EXPECT_EQ(texts_of(t, once), (std::vector<std::string>{kSpace, "On", "ce" + kSpace,
                                                         "upon" + kSpace + "a" + kSpace + "tim", "e"}));
  // Runs of spaces: every space is a "▁", plus the prefix.
  EXPECT_EQ(t.encode("  Hello   world", false), (Ids{80, 80, 80, 1288, 139, 80, 80, 410, 555}));
  EXPECT_EQ(t.encode("a  b", false), (Ids{104, 80, 54}));
  EXPECT_EQ(t.encode(" c   ", false), (Ids{80, 80, 55, 80, 80, 80}));
  // No byte tokens in this vocabulary: tabs, é and emoji fall to <unk> (id 0), each run fused into one.
  EXPECT_EQ(t.encode("\t\ttab", false), (Ids{80, 0, 292, 54}));
  EXPECT_EQ(t.encode("It's 12345 caf\xC3\xA9 \xF0\x9F\x98\x80!", false),
            (Ids{80, 1504, 12, 13, 14, 15, 16, 80, 295, 58, 0, 80, 0, 4}));
  EXPECT_EQ(t.encode("", false), Ids{});
}

TEST(Tokenizer, TinyStoriesSpecialTokensMatchAfterNormalization) {
  const Tokenizer& t = tinystories();
  // The added tokens are "normalized": their pattern is "▁<|start_story|>", so the prefix the normalizer puts
  // before the text belongs to the special token, and no new prefix starts after it.
  EXPECT_EQ(t.encode("<|start_story|>Once upon", false), (Ids{1, 147, 201, 189, 111}));
  EXPECT_EQ(t.encode("Hi <|end_story|> there", false), (Ids{80, 1158, 2, 80, 249, 57}));
  // Not an added token here: plain text.
  EXPECT_EQ(t.encode("<|endoftext|>", false).front(), 211);  // "▁<|"
}

TEST(Tokenizer, KjvHandCheckedIds) {
  const Tokenizer& t = kjv();
  const Ids genesis = t.encode("In the beginning God created");
  EXPECT_EQ(genesis, (Ids{1120, 259, 2426, 431, 3921}));  // no BOS: add_bos is off for this model
  EXPECT_EQ(texts_of(t, genesis),
            (std::vector<std::string>{"In", "\xC4\xA0the", "\xC4\xA0" "beginning", "\xC4\xA0God", "\xC4\xA0" "created"}));
  EXPECT_EQ(t.encode("Once upon a time"), (Ids{2188, 380, 502, 258, 684}));
  EXPECT_EQ(t.encode("a  b"), (Ids{97, 32, 270}));
  EXPECT_EQ(t.encode(" c   "), (Ids{278, 1166}));
  EXPECT_EQ(t.encode("\t\ttab"), (Ids{9, 9, 116, 445}));
  // Digits, an apostrophe, é as two bytes, the emoji as four.
  EXPECT_EQ(t.encode("It's 12345 caf\xC3\xA9 \xF0\x9F\x98\x80!"),
            (Ids{914, 393, 765, 50, 51, 52, 53, 888, 102, 195, 169, 32, 240, 159, 152, 128, 33}));
  // Special-token text becomes its id wherever it stands.
  EXPECT_EQ(t.encode("<|endoftext|><|endoftext|> x<|endoftext|>"), (Ids{4095, 4095, 32, 120, 4095}));
}

// Unicode letters and numbers the split pattern must classify (\p{L}, \p{N}), no-break and ideographic spaces,
// a combining accent, \r and \v, trailing spaces.
const std::string kUnicodeLine =
    "na\xC3\xAFve \xCE\x95\xCE\xBB\xCE\xBB\xCE\xAC\xCE\xB4\xCE\xB1\xC2\xA0\xD0\x9C\xD0\xBE\xD1\x81\xD0\xBA\xD0\xB2\xD0\xB0"
    "\xE3\x80\x80\xE6\x97\xA5\xE6\x9C\xAC \xD9\xA1\xD9\xA2\xD9\xA3 \xC2\xBD e\xCC\x81 \r\x0B x  ";

TEST(Tokenizer, UnicodeClassesAndWhitespace) {
  EXPECT_EQ(kjv().encode(kUnicodeLine),
            (Ids{1969, 195, 175, 308, 32,  206, 149, 206, 187, 206, 187, 206, 172, 206, 180, 206, 177, 194, 160, 208,
                 156,  208, 190, 209, 129, 208, 186, 208, 178, 208, 176, 227, 128, 128, 230, 151, 165, 230, 156, 172,
                 32,   217, 161, 217, 162, 217, 163, 32,  194, 189, 315, 204, 129, 32,  13,  11,  32,  120, 387}));
  EXPECT_EQ(kjv().decode(kjv().encode(kUnicodeLine)), kUnicodeLine);
  EXPECT_EQ(tinystories().encode(kUnicodeLine, false),
            (Ids{80, 557, 0, 218, 0, 80, 0, 80, 0, 80, 57, 0, 80, 0, 80, 1841, 80}));
}

TEST(Tokenizer, BosAndEosHandling) {
  const Tokenizer& t = tinystories();
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_EQ(t.encode("Once upon a time"), (Ids{1, 80, 147, 201, 282, 57}));
  EXPECT_EQ(t.encode(""), Ids{1});
  EXPECT_EQ(t.decode(Ids{1, 80, 147, 201, 282, 57}, /*skip_special=*/true), "Once upon a time");
  // HF's Strip decoder removes only a leading space of the whole text; after the BOS text none is removed.
  EXPECT_EQ(t.decode(Ids{1, 80, 147, 201, 282, 57}), "<|start_story|> Once upon a time");

  Vocab with_eos = load_hf_vocab(model_path("llama-5m-kjv/tokenizer.json"), "");
  with_eos.add_eos = true;
  with_eos.eos_id = 4095;
  const Tokenizer e(with_eos);
  EXPECT_EQ(e.encode("In"), (Ids{1120, 4095}));
  EXPECT_EQ(e.encode("In", false), (Ids{1120}));
  EXPECT_EQ(e.decode(Ids{1120, 4095}), "In<|endoftext|>");
  EXPECT_EQ(e.decode(Ids{1120, 4095}, true), "In");
}

TEST(Tokenizer, KjvRoundTripsAllSharedTexts) {
  for (const char* name : kSharedTexts) {
    const std::string text = read_text_file(data_path(name));
    const Ids ids = kjv().encode(text, false);
    EXPECT_GT(ids.size(), text.size() / 8) << name;
    EXPECT_EQ(kjv().decode(ids), text) << name;
  }
}

// TinyStories' vocabulary has no byte tokens, so characters outside it (tabs, mojibake such as "â€™") cannot
// survive: each maximal run of them decodes as one "<unk>" (or nothing when skipping special tokens).
TEST(Tokenizer, TinyStoriesRoundTripsAllSharedTextsUpToUnknownCharacters) {
  const Tokenizer& t = tinystories();
  for (const char* name : kSharedTexts) {
    const std::string text = read_text_file(data_path(name));
    std::string with_unk, without_unk;
    bool in_unknown_run = false;
    for (size_t pos = 0; pos < text.size();) {
      size_t len = 1;
      const auto lead = static_cast<unsigned char>(text[pos]);
      if (lead >= 0xF0) len = 4; else if (lead >= 0xE0) len = 3; else if (lead >= 0xC0) len = 2;
      const std::string ch = text.substr(pos, len);
      pos += len;
      const bool known = ch == " " || t.token_id(ch).has_value();
      if (!known) {
        if (!in_unknown_run) with_unk += "<unk>";
        in_unknown_run = true;
        continue;
      }
      in_unknown_run = false;
      with_unk += ch;
      without_unk += ch;
    }
    const Ids ids = t.encode(text, false);
    EXPECT_EQ(t.decode(ids), with_unk) << name;
    EXPECT_EQ(t.decode(ids, true), without_unk) << name;
  }
}

// A small SentencePiece-style vocabulary with all 256 byte tokens, to exercise byte fallback.
Vocab byte_fallback_vocab() {
  Vocab v;
  v.kind = VocabKind::SentencePieceBpe;
  v.tokens = {"<unk>", "<s>", "</s>"};
  v.types = {TokenType::Unknown, TokenType::Control, TokenType::Control};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    v.tokens.push_back(name);
    v.types.push_back(TokenType::Byte);
  }
  for (const std::string& t : {kSpace, std::string("a"), std::string("b"), kSpace + "a", std::string("ab"), kSpace + "ab"}) {
    v.tokens.push_back(t);
    v.types.push_back(TokenType::Normal);
  }
  v.merges = {"a b", kSpace + " ab", kSpace + " a"};
  v.unk_id = 0;
  v.bos_id = 1;
  v.eos_id = 2;
  v.add_bos = true;
  v.byte_fallback = true;
  v.add_prefix_space = true;
  return v;
}

TEST(Tokenizer, ByteFallbackEncodesAndDecodesUtf8) {
  const Tokenizer t(byte_fallback_vocab());
  const int32_t space = 259, a = 260, b = 261, space_a = 262, space_ab = 264;
  EXPECT_EQ(t.token_text(space_ab), kSpace + "ab");
  // "ab" merges first (rank 0), then "▁" + "ab" (rank 1); "▁ a" (rank 2) never gets its turn.
  EXPECT_EQ(t.encode("ab", false), (Ids{space_ab}));
  EXPECT_EQ(t.encode("ba", false), (Ids{space, b, a}));
  EXPECT_EQ(t.encode(" a", false), (Ids{space, space_a}));
  // é = C3 A9, 😀 = F0 9F 98 80; a tab is 09.
  const std::string text = "a\xC3\xA9 \xF0\x9F\x98\x80\tb";
  const Ids ids = t.encode(text);
  EXPECT_EQ(ids, (Ids{1, space_a, 3 + 0xC3, 3 + 0xA9, space, 3 + 0xF0, 3 + 0x9F, 3 + 0x98, 3 + 0x80, 3 + 0x09, b}));
  EXPECT_EQ(t.decode(ids, true), text);
  // Bytes that are not valid UTF-8 become one U+FFFD each (HF's ByteFallback decoder).
  EXPECT_EQ(t.decode(Ids{a, 3 + 0xF0, 3 + 0x9F, b}), "a\xEF\xBF\xBD\xEF\xBF\xBD" "b");
}

TEST(Tokenizer, UnknownCharactersWithoutByteTokens) {
  Vocab v = byte_fallback_vocab();
  v.byte_fallback = false;
  EXPECT_EQ(Tokenizer(v).encode("a\xC3\xA9\xC3\xA9" "b", false), (Ids{262, 0, 261}));  // fused
  v.fuse_unk = false;
  EXPECT_EQ(Tokenizer(v).encode("a\xC3\xA9\xC3\xA9" "b", false), (Ids{262, 0, 0, 261}));
  v.unk_id.reset();
  v.types[0] = TokenType::Normal;
  // HF drops what it cannot encode, and the neighbours then merge: "▁", "a", "b" → "▁ab".
  EXPECT_EQ(Tokenizer(v).encode("a\xC3\xA9" "b", false), (Ids{264}));
}

TEST(Tokenizer, PrefixSchemes) {
  Vocab v = byte_fallback_vocab();
  const int32_t space = 259, a = 260, space_a = 262;
  // Always (HF Prepend normalizer, llama.cpp add_space_prefix): even before an existing space, and again
  // after each (non-normalized) special token.
  v.prefix_scheme = PrefixScheme::Always;
  EXPECT_EQ(Tokenizer(v).encode(" a", false), (Ids{space, space_a}));
  EXPECT_EQ(Tokenizer(v).encode("a<s>a", false), (Ids{space_a, 1, space_a}));
  v.prefix_scheme = PrefixScheme::IfMissing;  // Metaspace "always"
  EXPECT_EQ(Tokenizer(v).encode(" a", false), (Ids{space_a}));
  EXPECT_EQ(Tokenizer(v).encode("a<s>a", false), (Ids{space_a, 1, space_a}));
  v.prefix_scheme = PrefixScheme::FirstIfMissing;  // Metaspace "first"
  EXPECT_EQ(Tokenizer(v).encode("a<s>a", false), (Ids{space_a, 1, a}));
  EXPECT_EQ(Tokenizer(v).encode("<s>a", false), (Ids{1, a}));
  EXPECT_EQ(Tokenizer(v).decode(Ids{space_a, 1, a}), "a<s>a");
  v.add_prefix_space = false;
  EXPECT_EQ(Tokenizer(v).encode("a", false), (Ids{a}));
  EXPECT_EQ(Tokenizer(v).decode(Ids{space_a}), " a");
}

TEST(Tokenizer, ScoreOnlyVocabularyMergesByScore) {
  // GGUF "llama" vocabularies carry scores instead of merges: higher score merges first.
  // Without "▁ab", "▁ab" ends as "▁a" + "b" or "▁" + "ab", whichever merge scores higher.
  Vocab v = byte_fallback_vocab();
  v.merges.clear();
  v.tokens[264] = "q";
  v.scores.assign(v.tokens.size(), -100.0f);
  v.scores[262] = -1.0f;  // "▁a"
  v.scores[263] = -2.0f;  // "ab"
  EXPECT_EQ(Tokenizer(v).encode("ab", false), (Ids{262, 261}));
  v.scores[262] = -5.0f;
  EXPECT_EQ(Tokenizer(v).encode("ab", false), (Ids{259, 263}));
}

// What a GGUF "llama" vocabulary carries (scores from load_hf_vocab, no merges) tokenizes exactly as the merges.
TEST(Tokenizer, TinyStoriesScoresReproduceTheMerges) {
  Vocab v = load_hf_vocab(model_path("tinystories-656k/tokenizer.json"), "");
  v.merges.clear();
  const Tokenizer by_score(v);
  for (const char* name : {"tinystories-eval.txt", "kjv-eval.txt"}) {
    const std::string text = read_text_file(data_path(name));
    EXPECT_EQ(by_score.encode(text, false), tinystories().encode(text, false)) << name;
  }
}

TEST(Tokenizer, ByteLevelDecodeReplacesInvalidUtf8) {
  const Tokenizer& t = kjv();
  EXPECT_EQ(t.decode(Ids{195}), "\xEF\xBF\xBD");                       // a lone lead byte
  EXPECT_EQ(t.decode(Ids{240, 159, 33}), "\xEF\xBF\xBD!");            // truncated 4-byte sequence: one U+FFFD
  EXPECT_EQ(t.decode(Ids{240, 159, 152, 128}), "\xF0\x9F\x98\x80");  // complete
}

TEST(Tokenizer, RefusesBadInput) {
  EXPECT_THROW(kjv().encode("ok \xC3("), Error);
  try {
    kjv().encode("ab\xFF");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput);
    EXPECT_NE(std::string(e.what()).find("byte 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(kjv().token_text(4096), Error);
  Vocab v = byte_fallback_vocab();
  v.merges.push_back("a zz");
  EXPECT_THROW(Tokenizer{v}, Error);
  v = byte_fallback_vocab();
  v.bos_id = 9999;
  EXPECT_THROW(Tokenizer{v}, Error);
  v = byte_fallback_vocab();
  v.kind = VocabKind::ByteLevelBpe;
  v.split_regex = "(unclosed";
  EXPECT_THROW(Tokenizer{v}, Error);
}

// A byte-level vocabulary: the 256 byte characters (id = byte) plus digit merges that cross the boundaries
// the split patterns draw differently.
Vocab digits_vocab() {
  Vocab v;
  v.kind = VocabKind::ByteLevelBpe;
  for (int b = 0; b < 256; ++b) {
    // GPT-2's table leaves printable ASCII as itself; the other bytes are never used here.
    v.tokens.push_back(b > 0x20 && b < 0x7F ? std::string(1, static_cast<char>(b)) : "<byte" + std::to_string(b) + ">");
  }
  for (const char* t : {"12", "123", "34", "45", "345"}) v.tokens.push_back(t);
  v.types.assign(v.tokens.size(), TokenType::Normal);
  v.merges = {"3 4", "1 2", "12 3", "4 5"};
  return v;
}

TEST(Tokenizer, ByteLevelPreNamesPickTheirSplitPattern) {
  Vocab v = digits_vocab();
  v.pre = "gpt-2";  // "12345" is one piece: "3 4" (rank 0) merges first
  EXPECT_EQ(Tokenizer(v).encode("12345", false), (Ids{256, 258, '5'}));
  v.pre = "llama-bpe";  // digits in threes: "123" | "45"
  EXPECT_EQ(Tokenizer(v).encode("12345", false), (Ids{257, 259}));
  v.pre = "qwen2";  // every digit alone
  EXPECT_EQ(Tokenizer(v).encode("12345", false), (Ids{'1', '2', '3', '4', '5'}));
  v.pre.clear();
  v.split_regex = R"(\p{N}{1,2})";  // an explicit pattern wins over the name
  EXPECT_EQ(Tokenizer(v).encode("12345", false), (Ids{256, 258, '5'}));
  v.split_regex = R"(\p{N})";
  EXPECT_EQ(Tokenizer(v).encode("12345", false), (Ids{'1', '2', '3', '4', '5'}));
}

TEST(Tokenizer, IgnoreMergesTakesWholeWords) {
  Vocab v = digits_vocab();
  EXPECT_EQ(Tokenizer(v).encode("345", false), (Ids{258, '5'}));
  v.ignore_merges = true;
  EXPECT_EQ(Tokenizer(v).encode("345", false), (Ids{260}));
  EXPECT_EQ(Tokenizer(v).encode("3456", false), (Ids{258, '5', '6'}));
}

}  // namespace
}  // namespace slmopt
