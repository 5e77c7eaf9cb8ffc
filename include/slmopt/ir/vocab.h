// A format-neutral description of a BPE tokenizer: what both tokenizer.json and GGUF's tokenizer.ggml.* keys
// can express. io/ fills it from either source; text/ builds the encoder from it; io/ writes it back out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace slmopt {

enum class VocabKind {
  None,
  SentencePieceBpe,  // "▁" for spaces, byte fallback <0xNN> (Llama, Mistral, TinyLlama); GGUF model "llama"
  ByteLevelBpe,      // GPT-2 byte↔unicode table + split regex (GPT-2, Qwen2, Llama-3); GGUF model "gpt2"
};

// Where add_prefix_space puts the prefix ("▁" for SentencePiece style, " " for byte-level) in each stretch of
// text between split-out added tokens.
enum class PrefixScheme {
  Always,          // every stretch, even one that already starts with a space (HF Prepend normalizer;
                   // llama.cpp add_space_prefix)
  IfMissing,       // every stretch that does not already start with one (HF Metaspace "always", ByteLevel)
  FirstIfMissing,  // only the stretch at the start of the text, if it lacks one (HF Metaspace "first")
};

// --- The text pipeline before BPE, as Hugging Face tokenizer.json describes it ---
// Each stretch of text between added tokens goes through the normalizer steps in order, then through the
// pre-tokenizer steps, each of which cuts every piece it receives into smaller pieces; every final piece is one
// BPE word. GGUF cannot say most of this: it has a pre-tokenizer name (tokenizer.ggml.pre) and a prefix flag,
// which pipeline_for_pre_name() turns into steps and llama_cpp_pre_name() recovers.

struct NormalizerStep {
  enum class Kind { Prepend, Replace, Nfc, Nfd, Nfkc, Nfkd };
  Kind kind = Kind::Replace;
  std::string pattern;  // Replace: the literal text replaced (HF {"String": ...})
  std::string content;  // Prepend: the prefix (added to non-empty text only); Replace: the replacement
};

// What a Split step does with the text its pattern matches (HF SplitDelimiterBehavior).
enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };
// When a Metaspace step puts its replacement character in front of a piece that does not start with one.
enum class MetaspacePrepend { Always, First, Never };

struct PreTokenizerStep {
  enum class Kind { Split, Digits, Metaspace, ByteLevel };
  Kind kind = Kind::Split;
  // Split: a PCRE2 pattern (UTF, Unicode properties), or plain text when `literal` (HF {"String": ...}).
  std::string pattern;
  bool literal = false;
  SplitBehavior behavior = SplitBehavior::Isolated;
  bool invert = false;  // the pattern matches the pieces, not the delimiters
  // Digits: every numeric character (Unicode N*) its own piece, or runs of them.
  bool individual_digits = false;
  // Metaspace: spaces → `replacement`, prefix per `prepend`, then (if `split`) a cut before every replacement.
  std::string replacement;
  MetaspacePrepend prepend = MetaspacePrepend::Always;
  bool split = true;
  // ByteLevel (must be the last step): " " prefix when missing, GPT-2 regex split when use_regex, then every
  // byte mapped through GPT-2's byte↔unicode table.
  bool add_prefix_space = false;
  bool use_regex = true;

  bool operator==(const PreTokenizerStep&) const = default;
};

struct TokenizerPipeline {
  std::vector<NormalizerStep> normalizers;
  std::vector<PreTokenizerStep> pre_tokenizers;
};

// GGUF's tokenizer.ggml.token_type values.
enum class TokenType : int32_t { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

struct Vocab {
  VocabKind kind = VocabKind::None;
  std::vector<std::string> tokens;   // id → token text (in the tokenizer's own alphabet: ▁ or byte-level)
  std::vector<float> scores;         // SentencePiece scores (empty → zeros); from tokenizer.json: −merge rank
  std::vector<TokenType> types;      // id → type
  std::vector<std::string> merges;   // "a b", rank order
  std::optional<int32_t> bos_id, eos_id, unk_id, pad_id;
  bool add_bos = false;
  bool add_eos = false;
  bool byte_fallback = false;        // SentencePiece-style: unknown bytes become <0xNN>
  bool add_prefix_space = false;     // prefix "▁" (SentencePiece style) or " " (byte-level), see PrefixScheme
  bool ignore_merges = false;        // Llama-3 style: whole-word vocabulary hits skip merging
  bool fuse_unk = true;              // consecutive unknown characters become one unk token
  PrefixScheme prefix_scheme = PrefixScheme::Always;
  // Added tokens that Hugging Face matches in the normalized text ("normalized": true): their pattern is the
  // normalized content (so with a Prepend("▁") normalizer, "▁<s>"), and they do not restart normalization.
  // All other Control/UserDefined/Unknown tokens are split out of the raw text before normalization.
  std::vector<int32_t> normalized_added_ids;
  // Added tokens that take the whitespace before (lstrip) or after (rstrip) them with them (HF AddedToken).
  std::vector<int32_t> lstrip_added_ids, rstrip_added_ids;
  std::string pre;                   // GGUF tokenizer.ggml.pre: "default", "gpt-2", "llama-bpe", "qwen2", ...
  std::string split_regex;           // byte-level pre-tokenizer split pattern ("" → the one `pre` names)
  // The exact pipeline when the source said it (tokenizer.json, or slmopt's own GGUF key); nullopt: the one
  // kind, add_prefix_space, prefix_scheme, split_regex and pre describe (see effective_pipeline).
  std::optional<TokenizerPipeline> pipeline;
  std::string chat_template;
  // The tokenizer.json / tokenizer_config.json texts when the source was a Hugging Face folder, so an HF
  // output reproduces them exactly; empty when the vocabulary came from GGUF.
  std::string source_tokenizer_json;
  std::string source_tokenizer_config_json;

  int64_t size() const { return static_cast<int64_t>(tokens.size()); }
};

// Byte-level pre-tokenizer split patterns (Hugging Face Split regexes), by GGUF tokenizer.ggml.pre name.
inline constexpr const char* kGpt2SplitRegex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
inline constexpr const char* kLlama3SplitRegex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline constexpr const char* kQwen2SplitRegex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// The pipeline the tokenizer runs: vocab.pipeline, else the one the shorthand fields describe — SentencePiece
// style: [Prepend("▁")] + Replace(" " → "▁") for PrefixScheme::Always, else Metaspace(first/always, no split);
// byte-level: the steps of effective_split_regex / `pre` followed by ByteLevel.
TokenizerPipeline effective_pipeline(const Vocab& vocab);
// The pre-tokenizer steps llama.cpp runs for a tokenizer.ggml.pre name of a "gpt2" (byte-level) vocabulary, as
// Hugging Face steps ending in ByteLevel; nullopt for a name slmopt does not know.
std::optional<std::vector<PreTokenizerStep>> pipeline_for_pre_name(const std::string& name);
// The tokenizer.ggml.pre name whose llama.cpp pre-tokenizer equals these byte-level steps; nullopt when none.
std::optional<std::string> llama_cpp_pre_name(const std::vector<PreTokenizerStep>& steps);

// The split pattern a byte-level vocabulary uses: vocab.split_regex, else the one its `pre` name stands for
// ("llama-bpe", "qwen2"), else GPT-2's.
std::string effective_split_regex(const Vocab& vocab);
// The GGUF `pre` name of a split pattern: "gpt-2", "llama-bpe", "qwen2", or "default" for any other.
std::string pre_name_for_split_regex(const std::string& regex);

// BPE merges for a SentencePiece-style vocabulary that has scores but no merge list (GGUF "llama" model):
// every split of a token into two vocabulary tokens, ranked by the merged token's score (highest first; ties
// by token id, then by the ids of the halves) — how Hugging Face converts a SentencePiece BPE model, and
// equivalent to SentencePiece's own highest-score-first merging.
std::vector<std::string> merges_from_scores(const Vocab& vocab);

}  // namespace slmopt
