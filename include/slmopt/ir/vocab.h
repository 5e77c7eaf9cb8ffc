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

// GGUF's tokenizer.ggml.token_type values.
enum class TokenType : int32_t { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

struct Vocab {
  VocabKind kind = VocabKind::None;
  std::vector<std::string> tokens;   // id → token text (in the tokenizer's own alphabet: ▁ or byte-level)
  std::vector<float> scores;         // SentencePiece scores (empty → zeros)
  std::vector<TokenType> types;      // id → type
  std::vector<std::string> merges;   // "a b", rank order
  std::optional<int32_t> bos_id, eos_id, unk_id, pad_id;
  bool add_bos = false;
  bool add_eos = false;
  bool byte_fallback = false;        // SentencePiece-style: unknown bytes become <0xNN>
  bool add_prefix_space = false;     // SentencePiece-style: prepend "▁" to the text (normalizer Prepend)
  bool ignore_merges = false;        // Llama-3 style: whole-word vocabulary hits skip merging
  std::string pre;                   // GGUF tokenizer.ggml.pre: "default", "gpt-2", "llama-bpe", "qwen2", ...
  std::string split_regex;           // byte-level pre-tokenizer split pattern ("" → the GPT-2 pattern)
  std::string chat_template;
  // The tokenizer.json / tokenizer_config.json texts when the source was a Hugging Face folder, so an HF
  // output reproduces them exactly; empty when the vocabulary came from GGUF.
  std::string source_tokenizer_json;
  std::string source_tokenizer_config_json;

  int64_t size() const { return static_cast<int64_t>(tokens.size()); }
};

}  // namespace slmopt
