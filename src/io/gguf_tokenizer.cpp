// Vocab ↔ tokenizer.* keys (see gguf_tokenizer.h).
//
// llama.cpp's "llama" tokenizer is SentencePiece's BPE: it repeatedly merges the adjacent pair whose
// concatenation is the vocabulary entry with the highest score (leftmost first on ties), not a merge list. A
// Hugging Face BPE vocabulary with byte fallback has merges but no scores, and convert_hf_to_gguf.py's fallback
// (LlamaHfVocab) writes -1000 for every token, which makes llama.cpp merge in left-to-right order instead of the
// tokenizer's. So when a vocabulary has no usable scores, the score of a token here is minus the rank of the
// first merge that produces it: highest score = earliest merge, which makes llama.cpp apply the merges in the
// same order as the Hugging Face tokenizer. Going the other way, a "llama" file without merges loads with
// scores only; text/ derives the merges it needs from them (merges_from_scores in ir/vocab.h).
#include "gguf_tokenizer.h"

#include <algorithm>
#include <iterator>
#include <optional>
#include <unordered_map>

#include "gguf_arch.h"
#include "hf_tokenizer_pipeline.h"
#include "slmopt/core/error.h"
#include "slmopt/core/log.h"  // spdlog
#include "slmopt/io/gguf_vocab.h"

namespace slmopt::gguf_tokenizer {
namespace {

using namespace gguf_arch;

bool is_whitespace_run(const std::string& text) {
  return !text.empty() && text.find_first_not_of(" \t") == std::string::npos;
}

// The tokenizer.ggml.pre name of a byte-level vocabulary: the name llama.cpp's converter would write
// (convert_hf_to_gguf.py recognises tokenizers by hashing their ids on a test text, so names stand for
// families): `vocab.pre` when its llama.cpp pre-tokenizer is the vocabulary's, else the first name in the table
// whose pre-tokenizer is. CodeGen's vocabulary (Phi-2: GPT-2's plus added runs of spaces and tabs) is "phi-2".
// Pipelines llama.cpp has no name for get "default" and a warning.
std::string pre_for(const Vocab& vocab, const std::string& context) {
  std::vector<PreTokenizerStep> steps = effective_pipeline(vocab).pre_tokenizers;
  if (!steps.empty()) steps.back().add_prefix_space = false;
  std::optional<std::string> name = llama_cpp_pre_name(steps);
  if (!vocab.pre.empty() && pipeline_for_pre_name(vocab.pre) == steps) name = vocab.pre;
  if (!name) {
    spdlog::warn("{}: llama.cpp has no pre-tokenizer for this vocabulary's split steps: writing tokenizer.ggml.pre "
                 "\"default\"; llama.cpp will split text differently (slmopt keeps the exact steps)",
                 context);
    return "default";
  }
  if (*name == "gpt-2") {
    const auto user_defined_whitespace = [&](size_t i) {
      return i < vocab.types.size() && vocab.types[i] == TokenType::UserDefined && is_whitespace_run(vocab.tokens[i]);
    };
    for (size_t i = 0; i < vocab.tokens.size(); ++i)
      if (user_defined_whitespace(i)) return "phi-2";
  }
  return *name;
}

// What the pipeline does that llama.cpp's tokenizer cannot be told: warned about once when writing.
void warn_unrepresentable(const Vocab& vocab, const std::string& context) {
  const TokenizerPipeline pipeline = effective_pipeline(vocab);
  std::vector<std::string> notes;
  for (const NormalizerStep& n : pipeline.normalizers) {
    if (n.kind != NormalizerStep::Kind::Prepend && n.kind != NormalizerStep::Kind::Replace)
      notes.push_back("Unicode normalization (llama.cpp tokenizes text as given)");
  }
  for (const PreTokenizerStep& p : pipeline.pre_tokenizers) {
    if (p.kind == PreTokenizerStep::Kind::Metaspace && p.prepend != MetaspacePrepend::Always)
      notes.push_back("the Metaspace prefix only where the text lacks one (llama.cpp adds \"\u2581\" to every "
                      "stretch of text, also one that starts with a space)");
    if (p.kind == PreTokenizerStep::Kind::ByteLevel && p.add_prefix_space)
      notes.push_back("ByteLevel's \" \" prefix");
  }
  if (!vocab.lstrip_added_ids.empty() || !vocab.rstrip_added_ids.empty())
    notes.push_back("added tokens that take the white space beside them");
  for (const std::string& note : notes)
    spdlog::warn("{}: llama.cpp's tokenizer has no equivalent of {}; texts it affects tokenize differently there",
                 context, note);
}

bool is_byte_token(const std::string& t) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); };
  return t.size() == 6 && t.compare(0, 3, "<0x") == 0 && hex(t[3]) && hex(t[4]) && t[5] == '>';
}

size_t utf8_length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// Token types as llama.cpp needs them. Hugging Face folders do not mark <0xNN> tokens, but llama.cpp decodes
// them as bytes only when their type is Byte (convert_hf_to_gguf.py marks them the same way).
std::vector<TokenType> token_types(const Vocab& vocab) {
  const bool sentencepiece = vocab.kind == VocabKind::SentencePieceBpe;
  std::vector<TokenType> types = vocab.types;
  if (types.empty()) {
    types.assign(vocab.tokens.size(), TokenType::Normal);
    for (auto id : {vocab.bos_id, vocab.eos_id, vocab.pad_id})
      if (id && *id >= 0 && *id < vocab.size()) types[static_cast<size_t>(*id)] = TokenType::Control;
    if (vocab.unk_id && *vocab.unk_id >= 0 && *vocab.unk_id < vocab.size())
      types[static_cast<size_t>(*vocab.unk_id)] = TokenType::Unknown;
  }
  for (size_t i = 0; i < types.size(); ++i)
    if (sentencepiece && types[i] == TokenType::Normal && is_byte_token(vocab.tokens[i])) types[i] = TokenType::Byte;
  return types;
}

bool scores_usable(const std::vector<float>& scores) {
  return !scores.empty() && std::any_of(scores.begin(), scores.end(), [&](float s) { return s != scores[0]; });
}

// Scores that make SentencePiece's highest-score-first merging follow the merge ranks (see the file comment).
std::vector<float> scores_from_merges(const Vocab& vocab, const std::string& context) {
  std::unordered_map<std::string, size_t> ids;
  for (size_t i = 0; i < vocab.tokens.size(); ++i) ids.emplace(vocab.tokens[i], i);
  const float never_merged = -static_cast<float>(vocab.merges.size() + 1);
  std::vector<float> scores(vocab.tokens.size(), never_merged);
  std::vector<bool> ranked(vocab.tokens.size(), false);
  for (size_t rank = 0; rank < vocab.merges.size(); ++rank) {
    const std::string& merge = vocab.merges[rank];
    const size_t space = merge.find(' ');
    if (space == std::string::npos)
      throw_error(ErrorKind::BadInput, "{}: merge #{} '{}' is not two tokens separated by a space", context, rank,
                  merge);
    auto it = ids.find(merge.substr(0, space) + merge.substr(space + 1));
    if (it == ids.end() || ranked[it->second]) continue;
    ranked[it->second] = true;
    scores[it->second] = -static_cast<float>(rank + 1);
  }
  // Pieces no merge produces: single characters and byte tokens are never merge results, so any score works;
  // longer ones (special tokens) get the lowest score so that merging reaches them last.
  for (size_t i = 0; i < scores.size(); ++i)
    if (!ranked[i] && (utf8_length(vocab.tokens[i]) <= 1 || is_byte_token(vocab.tokens[i]))) scores[i] = 0.0f;
  return scores;
}

void add_id(GgufMetadata& md, std::string_view key, const std::optional<int32_t>& id, int64_t n,
            const std::string& context) {
  if (!id) return;
  if (*id < 0 || *id >= n)
    throw_error(ErrorKind::BadInput, "{}: special token id {} for {} is outside the vocabulary of {}", context, *id,
                key, n);
  md.set(key, GgufValue::u32(static_cast<uint32_t>(*id)));
}

std::optional<int32_t> read_id(const GgufFile& file, std::string_view key, size_t n) {
  const auto id = file.get_int(key);
  if (!id) return std::nullopt;
  // Some writers store "none" as -1 or as UINT32_MAX.
  if (*id < 0 || *id == 0xFFFFFFFFll) return std::nullopt;
  if (static_cast<uint64_t>(*id) >= n)
    throw_error(ErrorKind::BadInput, "{}: {} = {} is outside the vocabulary of {} tokens", file.source(), key, *id, n);
  return static_cast<int32_t>(*id);
}

}  // namespace

void add_vocab_metadata(const Vocab& vocab, int64_t n_embedding_rows, GgufMetadata& md, const std::string& context) {
  if (vocab.kind == VocabKind::None) return;
  const int64_t n_tokens = vocab.size();
  if (n_tokens == 0) throw_error(ErrorKind::BadInput, "{}: the vocabulary has no tokens", context);
  if (n_tokens > n_embedding_rows)
    throw_error(ErrorKind::BadInput, "{}: the vocabulary has {} tokens but the embedding only {} rows", context,
                n_tokens, n_embedding_rows);
  if (!vocab.scores.empty() && static_cast<int64_t>(vocab.scores.size()) != n_tokens)
    throw_error(ErrorKind::BadInput, "{}: {} scores for {} tokens", context, vocab.scores.size(), n_tokens);
  if (!vocab.types.empty() && static_cast<int64_t>(vocab.types.size()) != n_tokens)
    throw_error(ErrorKind::BadInput, "{}: {} token types for {} tokens", context, vocab.types.size(), n_tokens);

  const bool sentencepiece = vocab.kind == VocabKind::SentencePieceBpe;
  warn_unrepresentable(vocab, context);
  std::vector<std::string> tokens = vocab.tokens;
  std::vector<TokenType> types = token_types(vocab);
  // llama.cpp's SentencePiece tokenizer turns a character missing from the vocabulary into its <0xNN> byte
  // tokens and aborts (std::out_of_range) when those do not exist; Hugging Face maps it to <unk> instead.
  if (sentencepiece && std::find(types.begin(), types.end(), TokenType::Byte) == types.end())
    spdlog::warn("{}: the vocabulary has no byte tokens (<0x00>..<0xFF>): llama.cpp aborts on any text with a "
                 "character outside the vocabulary when it runs this GGUF", context);
  std::vector<float> scores;
  if (sentencepiece)
    scores = scores_usable(vocab.scores) ? vocab.scores : scores_from_merges(vocab, context);
  else
    scores = vocab.scores;
  for (int64_t i = n_tokens; i < n_embedding_rows; ++i) {
    tokens.push_back("[PAD" + std::to_string(i) + "]");
    types.push_back(TokenType::Unused);
    if (!scores.empty()) scores.push_back(-1000.0f);
  }

  md.set(kTokenizerModel, GgufValue::string(sentencepiece ? "llama" : "gpt2"));
  // llama.cpp ignores the pre-tokenizer of "llama" vocabularies; its converter writes "default".
  const std::string pre = sentencepiece ? "default" : pre_for(vocab, context);
  md.set(kTokenizerPre, GgufValue::string(pre));
  md.set(kTokens, GgufValue::string_array(tokens));
  if (!scores.empty()) md.set(kScores, GgufValue::f32_array(scores));
  std::vector<int32_t> type_ids(types.size());
  std::transform(types.begin(), types.end(), type_ids.begin(), [](TokenType t) { return static_cast<int32_t>(t); });
  md.set(kTokenTypes, GgufValue::i32_array(type_ids));
  if (!vocab.merges.empty()) md.set(kMerges, GgufValue::string_array(vocab.merges));
  else if (!sentencepiece)
    throw_error(ErrorKind::BadInput, "{}: a byte-level BPE vocabulary needs merges", context);
  add_id(md, kBosId, vocab.bos_id, n_tokens, context);
  add_id(md, kEosId, vocab.eos_id, n_tokens, context);
  add_id(md, kUnkId, vocab.unk_id, n_tokens, context);
  add_id(md, kPadId, vocab.pad_id, n_tokens, context);
  md.set(kAddBos, GgufValue::boolean(vocab.add_bos));
  md.set(kAddEos, GgufValue::boolean(vocab.add_eos));
  md.set(kAddSpacePrefix, GgufValue::boolean(vocab.add_prefix_space));
  if (!vocab.chat_template.empty()) md.set(kChatTemplate, GgufValue::string(vocab.chat_template));
  if (vocab.pipeline) {
    md.set(kTokenizerPipeline, GgufValue::string(hf_pipeline::to_json(*vocab.pipeline)));
  } else if (!sentencepiece && !vocab.split_regex.empty()) {
    // llama.cpp picks the split pattern from the pre name; keep the exact pattern when the name does not say it.
    Vocab named;
    named.pre = pre;
    if (effective_split_regex(named) != vocab.split_regex) md.set(kSplitRegex, GgufValue::string(vocab.split_regex));
  }
  if (vocab.ignore_merges) md.set(kIgnoreMerges, GgufValue::boolean(true));
}

Vocab read_vocab_metadata(const GgufFile& file) {
  Vocab vocab;
  const auto model = file.get_string(kTokenizerModel);
  if (!model) return vocab;
  const std::string& src = file.source();
  if (*model == "llama") {
    vocab.kind = VocabKind::SentencePieceBpe;
  } else if (*model == "gpt2") {
    vocab.kind = VocabKind::ByteLevelBpe;
  } else {
    throw_error(ErrorKind::Unsupported, "{}: tokenizer model '{}' is not supported (only \"llama\" and \"gpt2\")",
                src, *model);
  }
  const bool sentencepiece = vocab.kind == VocabKind::SentencePieceBpe;

  const auto* tokens = file.get_array(kTokens, GgufType::String);
  if (!tokens || tokens->empty()) throw_error(ErrorKind::BadInput, "{}: {} is missing or empty", src, kTokens);
  const size_t n = tokens->size();
  vocab.tokens.reserve(n);
  for (const auto& t : *tokens) vocab.tokens.push_back(*t.to_string());

  if (const auto* scores = file.get_array(kScores, GgufType::F32)) {
    if (scores->size() != n)
      throw_error(ErrorKind::BadInput, "{}: {} has {} entries for {} tokens", src, kScores, scores->size(), n);
    vocab.scores.reserve(n);
    for (const auto& s : *scores) vocab.scores.push_back(static_cast<float>(*s.to_float()));
  }
  if (const auto* types = file.get_array(kTokenTypes, GgufType::I32)) {
    if (types->size() != n)
      throw_error(ErrorKind::BadInput, "{}: {} has {} entries for {} tokens", src, kTokenTypes, types->size(), n);
    vocab.types.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      const int64_t t = *(*types)[i].to_int();
      if (t < 0 || t > static_cast<int64_t>(TokenType::Byte))
        throw_error(ErrorKind::BadInput, "{}: {}[{}] = {} is not a token type", src, kTokenTypes, i, t);
      vocab.types.push_back(t == 0 ? TokenType::Normal : static_cast<TokenType>(t));  // 0 = "undefined"
    }
  }
  if (const auto* merges = file.get_array(kMerges, GgufType::String)) {
    vocab.merges.reserve(merges->size());
    for (const auto& m : *merges) vocab.merges.push_back(*m.to_string());
  } else if (!sentencepiece) {
    throw_error(ErrorKind::BadInput, "{}: a \"gpt2\" tokenizer needs {}", src, kMerges);
  }

  vocab.bos_id = read_id(file, kBosId, n);
  vocab.eos_id = read_id(file, kEosId, n);
  vocab.unk_id = read_id(file, kUnkId, n);
  vocab.pad_id = read_id(file, kPadId, n);
  // Defaults as llama.cpp applies them when the keys are absent.
  vocab.add_bos = file.get_bool(kAddBos).value_or(sentencepiece);
  vocab.add_eos = file.get_bool(kAddEos).value_or(false);
  vocab.add_prefix_space = file.get_bool(kAddSpacePrefix).value_or(sentencepiece);
  vocab.byte_fallback =
      sentencepiece && (std::find(vocab.types.begin(), vocab.types.end(), TokenType::Byte) != vocab.types.end() ||
                        std::find(vocab.tokens.begin(), vocab.tokens.end(), "<0x00>") != vocab.tokens.end());
  vocab.chat_template = file.get_string(kChatTemplate).value_or("");
  if (const auto pipeline = file.get_string(kTokenizerPipeline)) {
    vocab.pipeline = hf_pipeline::from_json(*pipeline, src + ": " + std::string(kTokenizerPipeline));
  }
  if (!sentencepiece) {
    // llama.cpp falls back to "default" (with a warning) when the key is missing.
    vocab.pre = file.get_string(kTokenizerPre).value_or("default");
    vocab.split_regex = file.get_string(kSplitRegex).value_or("");  // empty: the pattern `pre` names
    if (!vocab.pipeline && vocab.split_regex.empty() && !pipeline_for_pre_name(vocab.pre)) {
      throw_error(ErrorKind::Unsupported, "{}: {} '{}' is not a pre-tokenizer slmopt knows", src, kTokenizerPre,
                  vocab.pre);
    }
    // The names for which llama.cpp sets ignore_merges (Llama-3's tokenizer.json says "ignore_merges": true).
    static const char* const kIgnoringMerges[] = {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1",
                                                  "pixtral", "midm-2.0", "lfm2"};
    const bool ignores = std::find(std::begin(kIgnoringMerges), std::end(kIgnoringMerges), vocab.pre) !=
                         std::end(kIgnoringMerges);
    vocab.ignore_merges = file.get_bool(kIgnoreMerges).value_or(ignores);
  } else {
    // llama.cpp ignores the pre-tokenizer of "llama" vocabularies; converters write "default".
    vocab.pre = file.get_string(kTokenizerPre).value_or("");
    if (vocab.pre == "default") vocab.pre.clear();
    vocab.prefix_scheme = PrefixScheme::Always;  // llama.cpp prefixes every stretch after a special token
    vocab.ignore_merges = file.get_bool(kIgnoreMerges).value_or(false);
  }
  return vocab;
}

}  // namespace slmopt::gguf_tokenizer

namespace slmopt {

Vocab load_gguf_vocab(const std::string& path) { return gguf_tokenizer::read_vocab_metadata(GgufFile::open(path)); }

void write_gguf_vocab(const Vocab& vocab, const std::string& path, const std::string& architecture) {
  if (vocab.kind == VocabKind::None) throw_error(ErrorKind::BadInput, "{}: the vocabulary is empty", path);
  GgufMetadata md;
  md.set(gguf_arch::kArchitecture, GgufValue::string(architecture));
  md.set(gguf_arch::kName, GgufValue::string("vocabulary"));
  gguf_tokenizer::add_vocab_metadata(vocab, vocab.size(), md, path);
  write_gguf_file(path, md, {}, [](size_t) -> Tensor {
    throw_error(ErrorKind::Internal, "a vocabulary-only GGUF has no tensors");
  });
}

}  // namespace slmopt
