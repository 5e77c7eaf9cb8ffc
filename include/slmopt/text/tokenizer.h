// Text ↔ token ids for the two BPE styles of ir/vocab.h, reproducing Hugging Face `tokenizers` exactly:
//
//  1. Added tokens (Control / UserDefined / Unknown types) are split out of the raw text first, leftmost-longest,
//     so "<|endoftext|>" in the text becomes its id. Tokens HF marks "normalized" are instead matched in the
//     normalized text, against their normalized content (with a Prepend("▁") normalizer, "▁<s>").
//  2. SentencePiece style: each remaining stretch gets "▁" for every space and a "▁" prefix per
//     vocab.prefix_scheme; the stretch is one BPE word. Characters missing from the vocabulary become <0xNN>
//     byte tokens (byte fallback) or the unk token (consecutive ones fused when vocab.fuse_unk).
//     Byte-level style: each stretch is split by the pre-tokenizer regex (PCRE2, UTF + UCP), every byte of a
//     piece is mapped through GPT-2's byte↔unicode table, and each piece is one BPE word.
//  3. BPE merges by rank (lowest first, leftmost among equals) over a linked list of symbols with a priority
//     queue of candidate pairs (one heap, or one small heap per rank for words of thousands of symbols), so long
//     words cost O(n log n). Words are cached per encode() call. A SentencePiece vocabulary with scores but no
//     merges (GGUF) ranks merges by score (see merges_from_scores in ir/vocab.h).
//  4. encode(add_special) prepends BOS when vocab.add_bos and appends EOS when vocab.add_eos.
//
// decode() reverses it: "▁" → space, byte tokens reassembled (invalid UTF-8 → one U+FFFD per byte, as HF's
// ByteFallback decoder), the one leading space a prefix added stripped; byte-level tokens mapped back through the
// table (invalid UTF-8 → U+FFFD per maximal invalid sequence). skip_special drops Control and Unknown tokens.
//
// The object is immutable after construction: encode/decode are safe from several threads at once. Input text
// must be valid UTF-8 (Error(BadInput) with the byte offset otherwise).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "slmopt/ir/vocab.h"

namespace slmopt {

class Tokenizer {
 public:
  // Throws Error(Unsupported) for VocabKind::None, Error(BadInput) for an inconsistent vocabulary (a merge whose
  // halves or result are not tokens, special ids out of range, an invalid split regex).
  explicit Tokenizer(const Vocab& vocab);

  std::vector<int32_t> encode(std::string_view text, bool add_special = true) const;
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

  int64_t vocab_size() const;
  VocabKind kind() const;
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;
  // The token's own text (in the vocabulary's alphabet: "▁" or byte-level), Error(BadInput) when out of range.
  const std::string& token_text(int32_t id) const;
  // The id of a token text, if the vocabulary has it.
  std::optional<int32_t> token_id(std::string_view token) const;

  struct Impl;

 private:
  std::shared_ptr<const Impl> impl_;  // shared: copies are cheap and the state is read-only
};

}  // namespace slmopt
