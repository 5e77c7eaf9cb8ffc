// Private building blocks of text/tokenizer: UTF-8 helpers, GPT-2's byte↔unicode table, the normalizer and
// pre-tokenizer steps, and the BPE merge engine shared by both tokenizer styles.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "slmopt/ir/token_index.h"
#include "slmopt/ir/vocab.h"

struct pcre2_real_code_8;  // PCRE2's compiled pattern (pcre2.h stays out of this header)

namespace slmopt::tokenizer_detail {

// --- UTF-8 (tokenizer_unicode.cpp) ---

// Bytes in the UTF-8 sequence a lead byte starts; 1 for bytes that cannot start one (so scans advance).
size_t utf8_sequence_length(unsigned char lead);
// Offset of the first byte that is not part of well-formed UTF-8 (no overlongs, surrogates or values past
// U+10FFFF), or std::string_view::npos when the whole text is well-formed.
size_t find_invalid_utf8(std::string_view text);
void append_utf8(std::string& out, uint32_t code_point);
// Bytes → text, each maximal ill-formed subsequence replaced by U+FFFD (what Rust's from_utf8_lossy does).
std::string utf8_lossy(std::string_view bytes);

// GPT-2's table: every byte maps to a printable code point (bytes that are printable Latin-1 map to themselves,
// the rest to 256 + n in byte order). byte_level_encode maps each byte of `bytes`; byte_level_decode reverses a
// token's text, returning false when a character is not in the table.
const std::array<uint32_t, 256>& byte_to_code_point();
void byte_level_encode(std::string_view bytes, std::string& out);
bool byte_level_decode(std::string_view token, std::string& out);

// --- Normalizer and pre-tokenizer steps (tokenizer_pipeline.cpp) ---

// A stretch of a piece: matched by a pattern or between matches. Offsets are bytes.
struct Part {
  size_t begin, end;
  bool is_match;
};

// A compiled split pattern (PCRE2, UTF + Unicode properties; plain text when `literal`). The code is shared
// read-only; match data is per call, so one Pattern serves several threads.
class Pattern {
 public:
  // Throws Error(BadInput) naming the pattern when it does not compile.
  Pattern(const std::string& pattern, bool literal);
  ~Pattern();
  Pattern(const Pattern&) = delete;
  Pattern& operator=(const Pattern&) = delete;
  // Hugging Face find_matches: the parts, in order, covering `text` (none for empty text).
  void find_matches(std::string_view text, std::vector<Part>& out) const;

 private:
  pcre2_real_code_8* code_ = nullptr;
};

void apply_behavior(SplitBehavior behavior, std::vector<Part>& parts);

// Runs the normalizer steps on one stretch of text.
std::string normalize(const std::vector<NormalizerStep>& steps, std::string_view text);

// The pre-tokenizer steps, compiled once. Throws Error(BadInput) for a pattern that does not compile and
// Error(Unsupported) for a step after ByteLevel.
class PreTokenizer {
 public:
  explicit PreTokenizer(const std::vector<PreTokenizerStep>& steps);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // The BPE words of one piece of normalized text (byte-level mapped when the steps end in ByteLevel).
  // `first`: the piece starts the input text (Metaspace's "first" scheme prefixes only that one).
  void run(std::string_view text, bool first, std::vector<std::string>& words) const;
  bool byte_level() const { return byte_level_; }

 private:
  struct Step;
  struct Piece {
    std::string text;
    bool first;
  };
  void cut(const Step& step, Piece&& piece, std::vector<Piece>& out) const;

  std::vector<std::unique_ptr<Step>> steps_;
  bool byte_level_ = false;
};

// --- BPE (tokenizer_bpe.cpp) ---

// Hugging Face's BPE model: a word's characters become symbols (unknown characters: byte fallback or unk),
// then the lowest-ranked adjacent pair is merged until no pair has a merge.
class BpeModel {
 public:
  struct Options {
    std::optional<int32_t> unk_id;
    bool byte_fallback = false;
    bool fuse_unk = false;
    bool ignore_merges = false;
  };
  // Throws Error(BadInput) naming the merge when its halves or its result are not tokens.
  BpeModel(std::vector<std::string> tokens, const std::vector<std::string>& merges, Options options);
  BpeModel(const BpeModel&) = delete;
  BpeModel& operator=(const BpeModel&) = delete;

  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  const std::vector<std::string>& tokens() const { return tokens_; }
  std::optional<int32_t> find(std::string_view token) const;

 private:
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  struct Symbol {
    int32_t id;
    int32_t prev, next;  // -1 at the ends
    bool alive;
  };
  struct Candidate {  // a pair of adjacent symbols that has a merge, keyed by (rank, left position)
    int32_t rank;
    int32_t pos;
    int32_t result;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  class HeapQueue;
  class BucketQueue;
  template <typename Queue>
  void merge_all(std::vector<Symbol>& symbols, Queue& queue, std::vector<int32_t>& out) const;
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  const Merge* find_merge(int32_t left, int32_t right) const;
  Merge& merge_slot(uint64_t key);  // the slot of `key`, claimed (rank −1) when it was empty

  // Merges by (left, right) id pair, open addressing over one flat array at a load of at most one half: a node
  // per merge of a std::unordered_map cost more than checking the merges when building Gemma 3's (515k), and
  // encoding looks a pair up at every step.
  struct MergeSlot {
    uint64_t key;  // kNoPair: empty
    Merge merge;
  };
  static constexpr uint64_t kNoPair = ~uint64_t{0};  // pair_key of two non-negative ids never has the top bit
  size_t merge_at(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 32) & merge_mask_; }

  std::vector<std::string> tokens_;
  TokenIndex ids_;  // over tokens_ (whose strings never move: the model is neither copied nor moved)
  std::vector<MergeSlot> merge_slots_;
  size_t merge_mask_ = 0;
  size_t merges_count_ = 0;
  std::array<int32_t, 128> ascii_ids_{};  // id of each one-byte character, -1 when absent
  std::array<int32_t, 256> byte_ids_{};   // id of <0xNN>, -1 when absent
  Options options_;
};

}  // namespace slmopt::tokenizer_detail
