// The normalizer and pre-tokenizer steps (ir/vocab.h TokenizerPipeline) with hand-checked cases: a tiny
// SentencePiece-style vocabulary whose merges cross the places a step may cut, so every id list below shows where
// the text was cut (worked out by hand from Hugging Face tokenizers' definitions, see tokenizer_pipeline.cpp).
// Also: the real tokenizer.json files load into the expected steps and GGUF pre-tokenizer names, and bad
// components are refused by name.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "slmopt/core/atomic_file.h"
#include "slmopt/core/error.h"
#include "slmopt/io/gguf_format.h"
#include "slmopt/io/gguf_vocab.h"
#include "slmopt/io/hf_tokenizer.h"
#include "slmopt/text/tokenizer.h"
#include "test_support.h"
#include "tokenizer_texts.h"

namespace slmopt {
namespace {

using Ids = std::vector<int32_t>;
const std::string kM = "\xE2\x96\x81";  // "▁"

// Ids: 0 <unk>, 1 ▁, 2 a, 3 b, 4 1, 5 2, 6 ab, 7 ▁a, 8 12, 9 a▁, 10 aa, 11 ▁▁, 12 <x> (added), 13 é, 14 f, 15 i,
// 16 fi. Merge ranks: ▁▁ < ab < ▁a < 12 < a▁ < aa < fi.
Vocab tiny() {
  Vocab v;
  v.kind = VocabKind::SentencePieceBpe;
  v.tokens = {"<unk>", kM, "a", "b", "1", "2", "ab", kM + "a", "12", "a" + kM, "aa", kM + kM, "<x>", "\xC3\xA9",
              "f", "i", "fi"};
  v.types.assign(v.tokens.size(), TokenType::Normal);
  v.types[0] = TokenType::Unknown;
  v.types[12] = TokenType::Control;
  v.merges = {kM + " " + kM, "a b", kM + " a", "1 2", "a " + kM, "a a", "f i"};
  v.unk_id = 0;
  v.fuse_unk = true;
  v.pipeline = TokenizerPipeline{};
  return v;
}

NormalizerStep replace_spaces() { return {NormalizerStep::Kind::Replace, " ", kM}; }

PreTokenizerStep split(const std::string& pattern, bool literal, SplitBehavior behavior, bool invert = false) {
  PreTokenizerStep s;
  s.kind = PreTokenizerStep::Kind::Split;
  s.pattern = pattern;
  s.literal = literal;
  s.behavior = behavior;
  s.invert = invert;
  return s;
}

PreTokenizerStep metaspace(MetaspacePrepend prepend, bool split_words) {
  PreTokenizerStep s;
  s.kind = PreTokenizerStep::Kind::Metaspace;
  s.replacement = kM;
  s.prepend = prepend;
  s.split = split_words;
  return s;
}

Ids encode(const Vocab& v, const std::string& text) { return Tokenizer(v).encode(text, false); }

TEST(TokenizerPipeline, ReplaceNormalizerAloneKeepsOneWord) {
  Vocab v = tiny();
  v.pipeline->normalizers = {replace_spaces()};
  // "a▁a": ▁a (rank 2) beats a▁ (rank 4).
  EXPECT_EQ(encode(v, "a a"), (Ids{2, 7}));
  // Gemma-3's pipeline: Split(" ", MergedWithPrevious) after Replace(" " → "▁") finds no space to cut at.
  v.pipeline->pre_tokenizers = {split(" ", true, SplitBehavior::MergedWithPrevious)};
  EXPECT_EQ(encode(v, "a a"), (Ids{2, 7}));
}

TEST(TokenizerPipeline, SplitBehaviours) {
  Vocab v = tiny();
  v.pipeline->normalizers = {replace_spaces()};
  auto with = [&](PreTokenizerStep s) {
    v.pipeline->pre_tokenizers = {s};
    return encode(v, "a a");  // normalized "a▁a"
  };
  EXPECT_EQ(with(split(kM, true, SplitBehavior::MergedWithPrevious)), (Ids{9, 2}));  // "a▁" "a"
  EXPECT_EQ(with(split(kM, true, SplitBehavior::MergedWithNext)), (Ids{2, 7}));      // "a" "▁a"
  EXPECT_EQ(with(split(kM, true, SplitBehavior::Isolated)), (Ids{2, 1, 2}));         // "a" "▁" "a"
  EXPECT_EQ(with(split(kM, true, SplitBehavior::Removed)), (Ids{2, 2}));             // "a" "a"
  // invert: the pattern matches the pieces, so Removed drops the "▁" between them.
  EXPECT_EQ(with(split("a", false, SplitBehavior::Removed, true)), (Ids{2, 2}));
  // A regex pattern and Contiguous: "aa▁" → "aa" "▁" (Isolated would give "a" "a" "▁").
  v.pipeline->pre_tokenizers = {split("a", false, SplitBehavior::Contiguous)};
  EXPECT_EQ(encode(v, "aa "), (Ids{10, 1}));
  v.pipeline->pre_tokenizers = {split("a", false, SplitBehavior::Isolated)};
  EXPECT_EQ(encode(v, "aa "), (Ids{2, 2, 1}));
  // Consecutive delimiters: MergedWithNext glues only the last one to the following piece.
  v.pipeline->pre_tokenizers = {split(kM, true, SplitBehavior::MergedWithNext)};
  EXPECT_EQ(encode(v, "a  a"), (Ids{2, 1, 7}));
  v.pipeline->pre_tokenizers = {split(kM, true, SplitBehavior::MergedWithPrevious)};
  EXPECT_EQ(encode(v, "a  a"), (Ids{9, 1, 2}));
}

TEST(TokenizerPipeline, Digits) {
  Vocab v = tiny();
  v.pipeline->normalizers = {replace_spaces()};
  EXPECT_EQ(encode(v, "b12"), (Ids{3, 8}));
  PreTokenizerStep d;
  d.kind = PreTokenizerStep::Kind::Digits;
  d.individual_digits = true;
  v.pipeline->pre_tokenizers = {d};
  EXPECT_EQ(encode(v, "b12"), (Ids{3, 4, 5}));
  d.individual_digits = false;  // runs of digits stay together
  v.pipeline->pre_tokenizers = {d};
  EXPECT_EQ(encode(v, "b12"), (Ids{3, 8}));
  EXPECT_EQ(encode(v, "1b2"), (Ids{4, 3, 5}));
}

TEST(TokenizerPipeline, MetaspaceSchemesAndSplit) {
  Vocab v = tiny();
  // "a  a" → "▁a▁▁a": unsplit, ▁▁ (rank 0) merges first; split, the words are "▁a" "▁" "▁a".
  v.pipeline->pre_tokenizers = {metaspace(MetaspacePrepend::Always, false)};
  EXPECT_EQ(encode(v, "a  a"), (Ids{7, 11, 2}));
  v.pipeline->pre_tokenizers = {metaspace(MetaspacePrepend::Always, true)};
  EXPECT_EQ(encode(v, "a  a"), (Ids{7, 1, 7}));
  // A text that starts with a space gets no second "▁".
  EXPECT_EQ(encode(v, " a"), (Ids{7}));
  // Prefix schemes around an added token: always → both stretches, first → only the one at the start.
  v.pipeline->pre_tokenizers = {metaspace(MetaspacePrepend::Always, false)};
  EXPECT_EQ(encode(v, "a<x>a"), (Ids{7, 12, 7}));
  v.pipeline->pre_tokenizers = {metaspace(MetaspacePrepend::First, false)};
  EXPECT_EQ(encode(v, "a<x>a"), (Ids{7, 12, 2}));
  EXPECT_EQ(encode(v, "<x>a"), (Ids{12, 2}));
  v.pipeline->pre_tokenizers = {metaspace(MetaspacePrepend::Never, false)};
  EXPECT_EQ(encode(v, "a<x>a"), (Ids{2, 12, 2}));
  // Decoding strips the prefix only when the encoder adds one.
  EXPECT_EQ(Tokenizer(v).decode(Ids{7, 2}), " aa");
  v.pipeline->pre_tokenizers = {metaspace(MetaspacePrepend::First, false)};
  EXPECT_EQ(Tokenizer(v).decode(Ids{7, 2}), "aa");
}

TEST(TokenizerPipeline, UnicodeNormalizers) {
  Vocab v = tiny();
  const std::string e_acute_decomposed = "e\xCC\x81", fi_ligature = "\xEF\xAC\x81";
  v.pipeline->normalizers = {replace_spaces()};
  EXPECT_EQ(encode(v, e_acute_decomposed), (Ids{0}));  // not normalized: "e" and U+0301 are unknown (fused)
  v.pipeline->normalizers = {{NormalizerStep::Kind::Nfc, "", ""}, replace_spaces()};
  EXPECT_EQ(encode(v, e_acute_decomposed), (Ids{13}));
  EXPECT_EQ(encode(v, fi_ligature), (Ids{0}));  // NFC keeps the ligature
  v.pipeline->normalizers = {{NormalizerStep::Kind::Nfkc, "", ""}, replace_spaces()};
  EXPECT_EQ(encode(v, fi_ligature), (Ids{16}));
  EXPECT_EQ(encode(v, e_acute_decomposed + " " + fi_ligature), (Ids{13, 1, 16}));
  v.pipeline->normalizers = {{NormalizerStep::Kind::Nfd, "", ""}, replace_spaces()};
  EXPECT_EQ(encode(v, "\xC3\xA9"), (Ids{0}));  // é decomposed: unknown characters
}

TEST(TokenizerPipeline, AddedTokensThatStripWhiteSpace) {
  Vocab v = tiny();
  v.pipeline->normalizers = {replace_spaces()};
  EXPECT_EQ(encode(v, "a  <x>  a"), (Ids{2, 11, 12, 11, 2}));  // "a▁▁" "<x>" "▁▁a"
  v.rstrip_added_ids = {12};
  EXPECT_EQ(encode(v, "a  <x>  a"), (Ids{2, 11, 12, 2}));
  v.lstrip_added_ids = {12};
  EXPECT_EQ(encode(v, "a  <x>  a"), (Ids{2, 12, 2}));
}

// --- Real tokenizer.json files: the steps they load into and the GGUF name slmopt writes for them ---

Vocab load_bundled(const std::string& name) {
  const std::string dir = testing::model_path("tokenizers/") + name;
  return load_hf_vocab(dir + "/tokenizer.json", dir + "/tokenizer_config.json");
}

TEST(TokenizerPipeline, RealFilesLoadIntoTheirSteps) {
  const Vocab smollm = load_bundled("smollm");
  ASSERT_TRUE(smollm.pipeline);
  ASSERT_EQ(smollm.pipeline->pre_tokenizers.size(), 2u);
  EXPECT_EQ(smollm.pipeline->pre_tokenizers[0].kind, PreTokenizerStep::Kind::Digits);
  EXPECT_TRUE(smollm.pipeline->pre_tokenizers[0].individual_digits);
  EXPECT_EQ(smollm.pre, "smollm");
  // Digits cut "2024" into single digits, which the GPT-2 regex alone keeps as one piece.
  const Tokenizer t(smollm);
  EXPECT_EQ(t.encode("in 2024", false).size(), 6u);  // "in", " ", "2", "0", "2", "4"
  // Every numeric character is cut out, not only ASCII digits (Rust's char::is_numeric, llama.cpp's \p{N}; the
  // JavaScript port's \d would keep " ½" together): " ", "½" — the ids llama.cpp gives with pre "smollm".
  EXPECT_EQ(t.encode("ied 4 \xC2\xBD months", false), (Ids{885, 216, 36, 216, 16738, 2704}));

  EXPECT_EQ(load_bundled("gpt2").pre, "gpt-2");
  const Vocab phi2 = load_bundled("phi2");
  EXPECT_EQ(phi2.kind, VocabKind::ByteLevelBpe);
  // CodeGen's whitespace tokens win over BPE: four spaces are the added token 50284 ("    "), not BPE pieces.
  EXPECT_EQ(Tokenizer(phi2).encode("if x:\n    return", false), (Ids{361, 2124, 25, 198, 50284, 7783}));

  const Vocab llama2 = load_bundled("llama2");
  EXPECT_EQ(llama2.kind, VocabKind::SentencePieceBpe);
  EXPECT_TRUE(llama2.add_prefix_space);
  EXPECT_EQ(llama2.prefix_scheme, PrefixScheme::Always);
}

TEST(TokenizerPipeline, GgufCarriesTheLlamaCppPreName) {
  const std::string dir = testing::scratch_dir("tokenizer_pipeline_gguf");
  struct Expect {
    const char* folder;
    const char* pre;
  };
  for (const Expect e : {Expect{"gpt2", "gpt-2"}, Expect{"phi2", "phi-2"}, Expect{"smollm", "smollm"}}) {
    const Vocab v = load_bundled(e.folder);
    const std::string path = dir + "/" + e.folder + ".gguf";
    write_gguf_vocab(v, path);
    const Vocab back = load_gguf_vocab(path);
    EXPECT_EQ(back.kind, VocabKind::ByteLevelBpe) << e.folder;
    EXPECT_EQ(back.pre, e.pre) << e.folder;
    const Tokenizer a(v), b(back);
    for (const std::string text : {"Hello   world 12345!", "  def f(x):\n\t\treturn 3.14"})
      EXPECT_EQ(a.encode(text, false), b.encode(text, false)) << e.folder << ": " << text;
  }
  const Vocab llama2 = load_bundled("llama2");
  write_gguf_vocab(llama2, dir + "/llama2.gguf");
  const Vocab back = load_gguf_vocab(dir + "/llama2.gguf");
  EXPECT_EQ(back.kind, VocabKind::SentencePieceBpe);
  EXPECT_EQ(Tokenizer(back).encode(" Hello  world", false), Tokenizer(llama2).encode(" Hello  world", false));
}

// --- Refusals: one error naming the file and the component ---

void expect_refused(const std::string& components, ErrorKind kind, const std::string& needle) {
  const std::string dir = testing::scratch_dir("tokenizer_pipeline_errors");
  const std::string path = dir + "/tokenizer.json";
  write_file_atomic(path, R"({"model": {"type": "BPE", "vocab": {"a": 0, "<x>": 1}, "merges": []},)" + components +
                              "}");
  try {
    load_hf_vocab(path, "");
    ADD_FAILURE() << "no error for " << components;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(TokenizerPipeline, RefusesWhatItCannotRun) {
  const std::string byte_level = R"({"type": "ByteLevel", "add_prefix_space": false, "use_regex": true})";
  expect_refused(R"("pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "Sideways",
                    "invert": false})",
                 ErrorKind::BadInput, "Sideways");
  expect_refused(R"("pre_tokenizer": {"type": "Sequence", "pretokenizers": [)" + byte_level +
                     R"(, {"type": "Digits", "individual_digits": true}]})",
                 ErrorKind::Unsupported, "after ByteLevel");
  expect_refused(R"("normalizer": {"type": "Replace", "pattern": {"Regex": " +"}, "content": "▁"})",
                 ErrorKind::Unsupported, "Regex");
  expect_refused(R"("normalizer": {"type": "Precompiled", "precompiled_charsmap": ""})", ErrorKind::Unsupported,
                 "Precompiled");
  expect_refused(R"("pre_tokenizer": {"type": "Metaspace", "replacement": "ab", "prepend_scheme": "always"})",
                 ErrorKind::BadInput, "replacement");
  expect_refused(R"("added_tokens": [{"id": 1, "content": "<x>", "special": true, "single_word": true}],
                    "pre_tokenizer": )" + byte_level,
                 ErrorKind::Unsupported, "single_word");
}

TEST(TokenizerPipeline, GgufWithAnUnknownPreNameIsRefused) {
  GgufMetadata md;
  md.set("general.architecture", GgufValue::string("llama"));
  md.set("tokenizer.ggml.model", GgufValue::string("gpt2"));
  md.set("tokenizer.ggml.pre", GgufValue::string("no-such-pre"));
  md.set("tokenizer.ggml.tokens", GgufValue::string_array({"a", "b", "ab"}));
  md.set("tokenizer.ggml.merges", GgufValue::string_array({"a b"}));
  const std::string path = testing::scratch_dir("tokenizer_pipeline_pre") + "/vocab.gguf";
  write_gguf_file(path, md, {}, [](size_t) -> Tensor { throw std::logic_error("no tensors"); });
  try {
    load_gguf_vocab(path);
    ADD_FAILURE() << "an unknown pre-tokenizer name was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported) << e.what();
    for (const char* needle : {"tokenizer.ggml.pre", "no-such-pre", "vocab.gguf"})
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace slmopt
