// The tokenizer pipeline (see text/tokenizer.h): added-token split → normalizer → added-token split of the
// normalized text → pre-tokenizer → BPE per word, and the decoders that reverse it. The stages follow Hugging
// Face `tokenizers` (AddedVocabulary::extract_and_normalize, the Prepend/Replace normalizers, the Metaspace and
// ByteLevel pre-tokenizers, the Replace/ByteFallback/Fuse/Strip and ByteLevel decoders).
#include "slmopt/text/tokenizer.h"

#include <algorithm>
#include <array>
#include <functional>
#include <unordered_map>
#include <unordered_set>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "slmopt/core/error.h"
#include "tokenizer_detail.h"

namespace slmopt {

using tokenizer_detail::BpeModel;

namespace {

constexpr std::string_view kMetaspace = "\xE2\x96\x81";  // "▁"

// Added tokens matched by exact text, leftmost-longest (HF uses an Aho-Corasick automaton in that mode).
class AddedTokenMatcher {
 public:
  void add(std::string text, int32_t id) {
    if (text.empty()) return;
    const auto first = static_cast<unsigned char>(text[0]);
    by_first_byte_[first].push_back({std::move(text), id});
  }
  void finish() {
    for (auto& list : by_first_byte_) {
      std::stable_sort(list.begin(), list.end(),
                       [](const Pattern& a, const Pattern& b) { return a.text.size() > b.text.size(); });
    }
  }
  bool empty() const {
    return std::all_of(by_first_byte_.begin(), by_first_byte_.end(), [](const auto& l) { return l.empty(); });
  }
  // Calls on_text(piece, offset) for the (non-empty) text between matches and on_token(id) for each match.
  template <typename OnText, typename OnToken>
  void split(std::string_view text, OnText&& on_text, OnToken&& on_token) const {
    size_t piece_start = 0;
    for (size_t pos = 0; pos < text.size();) {
      const Pattern* hit = nullptr;
      for (const Pattern& p : by_first_byte_[static_cast<unsigned char>(text[pos])]) {
        if (text.compare(pos, p.text.size(), p.text) == 0) {
          hit = &p;
          break;
        }
      }
      if (hit == nullptr) {
        ++pos;
        continue;
      }
      if (pos > piece_start) on_text(text.substr(piece_start, pos - piece_start), piece_start);
      on_token(hit->id);
      pos += hit->text.size();
      piece_start = pos;
    }
    if (piece_start < text.size()) on_text(text.substr(piece_start), piece_start);
  }

 private:
  struct Pattern {
    std::string text;
    int32_t id;
  };
  std::array<std::vector<Pattern>, 256> by_first_byte_;
};

// A compiled split pattern; the code is shared read-only, match data is per call.
class SplitRegex {
 public:
  explicit SplitRegex(const std::string& pattern) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP,
                          &error, &offset, nullptr);
    if (code_ == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof message);
      throw_error(ErrorKind::BadInput, "tokenizer split regex does not compile at offset {}: {}", offset,
                  reinterpret_cast<const char*>(message));
    }
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // an interpreter fallback remains if JIT is unavailable
  }
  ~SplitRegex() { pcre2_code_free(code_); }
  SplitRegex(const SplitRegex&) = delete;
  SplitRegex& operator=(const SplitRegex&) = delete;

  // HF Split with behaviour Isolated: every match and every stretch between matches is a piece.
  template <typename OnPiece>
  void split(std::string_view text, OnPiece&& on_piece) const {
    pcre2_match_data* data = pcre2_match_data_create_from_pattern(code_, nullptr);
    if (data == nullptr) throw_error(ErrorKind::Internal, "tokenizer: out of memory for regex match data");
    struct Free {
      pcre2_match_data* d;
      ~Free() { pcre2_match_data_free(d); }
    } guard{data};
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    size_t start = 0, emitted = 0;
    while (start < text.size()) {
      const int rc = pcre2_match(code_, subject, text.size(), start, PCRE2_NO_UTF_CHECK, data, nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) throw_error(ErrorKind::Internal, "tokenizer: regex match failed with PCRE2 error {}", rc);
      const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data);
      const size_t begin = ovector[0], end = ovector[1];
      if (end == begin) {  // an empty match splits nothing; step over one character
        start = begin + tokenizer_detail::utf8_sequence_length(static_cast<unsigned char>(text[begin]));
        continue;
      }
      if (begin > emitted) on_piece(text.substr(emitted, begin - emitted));
      on_piece(text.substr(begin, end - begin));
      emitted = start = end;
    }
    if (emitted < text.size()) on_piece(text.substr(emitted));
  }

 private:
  pcre2_code* code_ = nullptr;
};

// The byte a "<0xNN>" token stands for.
std::optional<uint8_t> byte_token_value(std::string_view token) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  if (token.size() != 6 || !token.starts_with("<0x") || token[5] != '>') return std::nullopt;
  const int high = hex(token[3]), low = hex(token[4]);
  if (high < 0 || low < 0) return std::nullopt;
  return static_cast<uint8_t>(high * 16 + low);
}

bool is_special(TokenType type) { return type == TokenType::Control || type == TokenType::Unknown; }
bool is_added(TokenType type) {
  return type == TokenType::Control || type == TokenType::UserDefined || type == TokenType::Unknown;
}

void check_id(const std::optional<int32_t>& id, size_t size, const char* what) {
  if (id && (*id < 0 || static_cast<size_t>(*id) >= size)) {
    throw_error(ErrorKind::BadInput, "tokenizer: {} id {} is outside the vocabulary of {} tokens", what, *id, size);
  }
}

}  // namespace

struct Tokenizer::Impl {
  VocabKind kind = VocabKind::None;
  std::unique_ptr<BpeModel> bpe;
  std::vector<TokenType> types;
  std::optional<int32_t> bos, eos;
  bool add_bos = false, add_eos = false;
  bool add_prefix_space = false;
  PrefixScheme prefix_scheme = PrefixScheme::Always;
  AddedTokenMatcher raw_added, normalized_added;
  std::unique_ptr<SplitRegex> split;  // byte-level only

  bool sentencepiece() const { return kind == VocabKind::SentencePieceBpe; }
  // The normalizer: for SentencePiece style with the Prepend/Replace normalizer, "▁" prefix and spaces → "▁".
  bool has_normalizer() const { return sentencepiece() && prefix_scheme == PrefixScheme::Always; }
  std::string normalize(std::string_view text) const;
  // Pre-tokenizer + BPE of one stretch of normalized text; `at_text_start` when it begins the input.
  void encode_stretch(std::string_view text, bool at_text_start,
                      std::unordered_map<std::string, std::vector<int32_t>>& cache, std::vector<int32_t>& out) const;
  void encode_word(std::string_view word, std::unordered_map<std::string, std::vector<int32_t>>& cache,
                   std::vector<int32_t>& out) const;
};

std::string Tokenizer::Impl::normalize(std::string_view text) const {
  if (!has_normalizer() || text.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size() + text.size() / 4 + 3);
  if (add_prefix_space) out.append(kMetaspace);
  for (const char c : text) {
    if (c == ' ') {
      out.append(kMetaspace);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

void Tokenizer::Impl::encode_word(std::string_view word, std::unordered_map<std::string, std::vector<int32_t>>& cache,
                                  std::vector<int32_t>& out) const {
  constexpr size_t kMaxCachedWord = 256;  // long stretches rarely repeat; do not hold them
  if (word.size() > kMaxCachedWord) {
    bpe->encode_word(word, out);
    return;
  }
  auto [it, inserted] = cache.try_emplace(std::string(word));
  if (inserted) bpe->encode_word(word, it->second);
  out.insert(out.end(), it->second.begin(), it->second.end());
}

void Tokenizer::Impl::encode_stretch(std::string_view text, bool at_text_start,
                                     std::unordered_map<std::string, std::vector<int32_t>>& cache,
                                     std::vector<int32_t>& out) const {
  if (sentencepiece()) {
    if (has_normalizer()) {  // already normalized; no pre-tokenizer: the stretch is one word
      encode_word(text, cache, out);
      return;
    }
    // Metaspace pre-tokenizer (split off): spaces → "▁", prefix per scheme when missing.
    std::string word;
    const bool prefix = add_prefix_space && (prefix_scheme == PrefixScheme::IfMissing || at_text_start);
    if (prefix && !text.starts_with(' ') && !text.starts_with(kMetaspace)) word.append(kMetaspace);
    for (const char c : text) {
      if (c == ' ') {
        word.append(kMetaspace);
      } else {
        word.push_back(c);
      }
    }
    encode_word(word, cache, out);
    return;
  }
  // Byte-level: optional " " prefix, regex split, byte → unicode mapping, BPE per piece.
  std::string prefixed;
  if (add_prefix_space && !text.starts_with(' ')) {
    prefixed = " ";
    prefixed.append(text);
    text = prefixed;
  }
  std::string mapped;
  split->split(text, [&](std::string_view piece) {
    mapped.clear();
    tokenizer_detail::byte_level_encode(piece, mapped);
    encode_word(mapped, cache, out);
  });
}

Tokenizer::Tokenizer(const Vocab& vocab) {
  auto impl = std::make_shared<Impl>();
  impl->kind = vocab.kind;
  if (vocab.kind == VocabKind::None) throw_error(ErrorKind::Unsupported, "tokenizer: vocabulary has no BPE style");
  const size_t size = vocab.tokens.size();
  check_id(vocab.bos_id, size, "BOS");
  check_id(vocab.eos_id, size, "EOS");
  check_id(vocab.unk_id, size, "unknown-token");
  check_id(vocab.pad_id, size, "padding");
  if (vocab.add_bos && !vocab.bos_id) throw_error(ErrorKind::BadInput, "tokenizer: add_bos without a BOS token");
  if (vocab.add_eos && !vocab.eos_id) throw_error(ErrorKind::BadInput, "tokenizer: add_eos without an EOS token");
  impl->types = vocab.types;
  impl->types.resize(size, TokenType::Normal);
  impl->bos = vocab.bos_id;
  impl->eos = vocab.eos_id;
  impl->add_bos = vocab.add_bos;
  impl->add_eos = vocab.add_eos;
  impl->add_prefix_space = vocab.add_prefix_space;
  impl->prefix_scheme = vocab.prefix_scheme;

  const bool sentencepiece = vocab.kind == VocabKind::SentencePieceBpe;
  BpeModel::Options options;
  options.unk_id = vocab.unk_id;
  options.byte_fallback = sentencepiece && vocab.byte_fallback;
  options.fuse_unk = vocab.fuse_unk;
  options.ignore_merges = vocab.ignore_merges;
  const std::vector<std::string> merges =
      sentencepiece && vocab.merges.empty() ? merges_from_scores(vocab) : vocab.merges;
  impl->bpe = std::make_unique<BpeModel>(vocab.tokens, merges, options);

  const std::unordered_set<int32_t> normalized(vocab.normalized_added_ids.begin(), vocab.normalized_added_ids.end());
  for (size_t id = 0; id < size; ++id) {
    if (!is_added(impl->types[id])) continue;
    const auto token_id = static_cast<int32_t>(id);
    if (normalized.count(token_id) > 0) {
      impl->normalized_added.add(impl->normalize(vocab.tokens[id]), token_id);
    } else {
      impl->raw_added.add(vocab.tokens[id], token_id);
    }
  }
  impl->raw_added.finish();
  impl->normalized_added.finish();
  if (!sentencepiece) impl->split = std::make_unique<SplitRegex>(effective_split_regex(vocab));
  impl_ = std::move(impl);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special) const {
  if (const size_t bad = tokenizer_detail::find_invalid_utf8(text); bad != std::string_view::npos) {
    throw_error(ErrorKind::BadInput, "text is not valid UTF-8 at byte {}", bad);
  }
  const Impl& impl = *impl_;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_special && impl.add_bos) out.push_back(*impl.bos);
  std::unordered_map<std::string, std::vector<int32_t>> cache;
  auto push_token = [&](int32_t id) { out.push_back(id); };
  impl.raw_added.split(
      text,
      [&](std::string_view raw, size_t raw_offset) {
        const std::string normalized = impl.normalize(raw);
        impl.normalized_added.split(
            normalized,
            [&](std::string_view piece, size_t offset) {
              // Offsets only matter for Metaspace "first", whose pipeline has no normalizer (offsets agree).
              impl.encode_stretch(piece, raw_offset + offset == 0, cache, out);
            },
            push_token);
      },
      push_token);
  if (add_special && impl.add_eos) out.push_back(*impl.eos);
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  const Impl& impl = *impl_;
  std::string out;
  if (impl.sentencepiece()) {
    // Replace("▁" → " ") per token, ByteFallback (runs of <0xNN> → their UTF-8, or one U+FFFD per byte when
    // that is not valid UTF-8), Fuse, then Strip one leading space when the encoder adds a prefix.
    std::string bytes;
    auto flush_bytes = [&] {
      if (bytes.empty()) return;
      if (tokenizer_detail::find_invalid_utf8(bytes) == std::string_view::npos) {
        out.append(bytes);
      } else {
        for (size_t i = 0; i < bytes.size(); ++i) tokenizer_detail::append_utf8(out, 0xFFFD);
      }
      bytes.clear();
    };
    for (const int32_t id : ids) {
      const std::string& token = token_text(id);
      const TokenType type = impl.types[static_cast<size_t>(id)];
      if (skip_special && is_special(type)) continue;
      if (type == TokenType::Byte) {
        if (const auto byte = byte_token_value(token)) {
          bytes.push_back(static_cast<char>(*byte));
          continue;
        }
      }
      flush_bytes();
      for (size_t pos = 0; pos < token.size();) {
        if (token.compare(pos, kMetaspace.size(), kMetaspace) == 0) {
          out.push_back(' ');
          pos += kMetaspace.size();
        } else {
          out.push_back(token[pos++]);
        }
      }
    }
    flush_bytes();
    if (impl.add_prefix_space && out.starts_with(' ')) out.erase(0, 1);
    return out;
  }
  // Byte-level: every character back through the table (a token with characters outside it, such as an added
  // token, contributes its own bytes), then the bytes as lossy UTF-8.
  std::string bytes;
  for (const int32_t id : ids) {
    const std::string& token = token_text(id);
    if (skip_special && is_special(impl.types[static_cast<size_t>(id)])) continue;
    if (!tokenizer_detail::byte_level_decode(token, bytes)) bytes.append(token);
  }
  return tokenizer_detail::utf8_lossy(bytes);
}

int64_t Tokenizer::vocab_size() const { return static_cast<int64_t>(impl_->bpe->tokens().size()); }
VocabKind Tokenizer::kind() const { return impl_->kind; }
std::optional<int32_t> Tokenizer::bos_id() const { return impl_->bos; }
std::optional<int32_t> Tokenizer::eos_id() const { return impl_->eos; }

const std::string& Tokenizer::token_text(int32_t id) const {
  const auto& tokens = impl_->bpe->tokens();
  if (id < 0 || static_cast<size_t>(id) >= tokens.size()) {
    throw_error(ErrorKind::BadInput, "token id {} is outside the vocabulary of {} tokens", id, tokens.size());
  }
  return tokens[static_cast<size_t>(id)];
}

std::optional<int32_t> Tokenizer::token_id(std::string_view token) const { return impl_->bpe->find(token); }

}  // namespace slmopt
