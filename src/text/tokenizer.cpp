// The tokenizer pipeline (see text/tokenizer.h): added-token split → normalizer → added-token split of the
// normalized text → pre-tokenizer → BPE per word, and the decoders that reverse it. The stages follow Hugging
// Face `tokenizers` (AddedVocabulary::extract_and_normalize, the normalizer and pre-tokenizer steps of
// tokenizer_pipeline.cpp, the Replace/ByteFallback/Fuse/Strip and ByteLevel decoders).
#include "slmopt/text/tokenizer.h"

#include <algorithm>
#include <array>
#include <functional>
#include <unordered_map>
#include <unordered_set>

#include "slmopt/core/error.h"
#include "tokenizer_detail.h"

namespace slmopt {

using tokenizer_detail::BpeModel;
using tokenizer_detail::PreTokenizer;

namespace {

constexpr std::string_view kMetaspace = "\xE2\x96\x81";  // "▁"

// Unicode White_Space (Rust's char::is_whitespace, which HF's lstrip/rstrip use).
bool is_white_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// The code point of the UTF-8 sequence at text[pos] (text is valid UTF-8).
uint32_t code_point_at(std::string_view text, size_t pos, size_t* length) {
  const auto lead = static_cast<unsigned char>(text[pos]);
  const size_t n = tokenizer_detail::utf8_sequence_length(lead);
  uint32_t c = n == 1 ? lead : n == 2 ? lead & 0x1Fu : n == 3 ? lead & 0x0Fu : lead & 0x07u;
  for (size_t i = 1; i < n; ++i) c = (c << 6) | (static_cast<unsigned char>(text[pos + i]) & 0x3Fu);
  *length = n;
  return c;
}

// Added tokens matched by exact text, leftmost-longest (HF uses an Aho-Corasick automaton in that mode). A token
// with lstrip / rstrip also takes the white space before / after it (never reaching into an earlier match).
class AddedTokenMatcher {
 public:
  void add(std::string text, int32_t id, bool lstrip, bool rstrip) {
    if (text.empty()) return;
    const auto first = static_cast<unsigned char>(text[0]);
    by_first_byte_[first].push_back({std::move(text), id, lstrip, rstrip});
  }
  void finish() {
    for (auto& list : by_first_byte_) {
      std::stable_sort(list.begin(), list.end(),
                       [](const Pattern& a, const Pattern& b) { return a.text.size() > b.text.size(); });
    }
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
      size_t start = pos, stop = pos + hit->text.size();
      if (hit->lstrip) {
        while (start > piece_start) {
          size_t prev = start - 1, n = 0;
          while (prev > piece_start && (static_cast<unsigned char>(text[prev]) & 0xC0) == 0x80) --prev;
          if (!is_white_space(code_point_at(text, prev, &n))) break;
          start = prev;
        }
      }
      if (hit->rstrip) {
        size_t n = 0;
        while (stop < text.size() && is_white_space(code_point_at(text, stop, &n))) stop += n;
      }
      if (start > piece_start) on_text(text.substr(piece_start, start - piece_start), piece_start);
      on_token(hit->id);
      pos = piece_start = stop;
    }
    if (piece_start < text.size()) on_text(text.substr(piece_start), piece_start);
  }

 private:
  struct Pattern {
    std::string text;
    int32_t id;
    bool lstrip, rstrip;
  };
  std::array<std::vector<Pattern>, 256> by_first_byte_;
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
  std::vector<NormalizerStep> normalizers;
  std::unique_ptr<PreTokenizer> pre;
  std::string space_symbol{kMetaspace};  // SentencePiece style: what a space became (decode turns it back)
  bool strip_decoded_prefix = false;     // SentencePiece style: the encoder prefixes a space symbol
  AddedTokenMatcher raw_added, normalized_added;

  bool sentencepiece() const { return kind == VocabKind::SentencePieceBpe; }
  std::string normalize(std::string_view text) const { return tokenizer_detail::normalize(normalizers, text); }
  // Pre-tokenizer + BPE of one stretch of normalized text; `at_text_start` when it begins the input.
  void encode_stretch(std::string_view text, bool at_text_start,
                      std::unordered_map<std::string, std::vector<int32_t>>& cache, std::vector<int32_t>& out) const;
  void encode_word(std::string_view word, std::unordered_map<std::string, std::vector<int32_t>>& cache,
                   std::vector<int32_t>& out) const;
};

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
  thread_local std::vector<std::string> words;
  pre->run(text, at_text_start, words);
  for (const std::string& word : words) encode_word(word, cache, out);
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

  const bool sentencepiece = vocab.kind == VocabKind::SentencePieceBpe;
  TokenizerPipeline pipeline = effective_pipeline(vocab);
  impl->pre = std::make_unique<PreTokenizer>(pipeline.pre_tokenizers);
  if (impl->pre->byte_level() == sentencepiece) {
    throw_error(ErrorKind::Unsupported, "tokenizer: {}",
                sentencepiece ? "a SentencePiece-style vocabulary with a ByteLevel step"
                              : "a byte-level vocabulary whose pipeline does not end in ByteLevel");
  }
  for (const NormalizerStep& step : pipeline.normalizers) {
    if (step.kind == NormalizerStep::Kind::Prepend) impl->strip_decoded_prefix = true;
    if (step.kind == NormalizerStep::Kind::Replace && step.pattern == " ") impl->space_symbol = step.content;
  }
  for (const PreTokenizerStep& step : pipeline.pre_tokenizers) {
    if (step.kind != PreTokenizerStep::Kind::Metaspace) continue;
    impl->space_symbol = step.replacement;
    if (step.prepend != MetaspacePrepend::Never) impl->strip_decoded_prefix = true;
  }
  impl->normalizers = std::move(pipeline.normalizers);
  BpeModel::Options options;
  options.unk_id = vocab.unk_id;
  options.byte_fallback = sentencepiece && vocab.byte_fallback;
  options.fuse_unk = vocab.fuse_unk;
  options.ignore_merges = vocab.ignore_merges;
  const std::vector<std::string> merges =
      sentencepiece && vocab.merges.empty() ? merges_from_scores(vocab) : vocab.merges;
  impl->bpe = std::make_unique<BpeModel>(vocab.tokens, merges, options);

  const std::unordered_set<int32_t> normalized(vocab.normalized_added_ids.begin(), vocab.normalized_added_ids.end());
  const std::unordered_set<int32_t> lstrip(vocab.lstrip_added_ids.begin(), vocab.lstrip_added_ids.end());
  const std::unordered_set<int32_t> rstrip(vocab.rstrip_added_ids.begin(), vocab.rstrip_added_ids.end());
  for (size_t id = 0; id < size; ++id) {
    if (!is_added(impl->types[id])) continue;
    const auto token_id = static_cast<int32_t>(id);
    const bool l = lstrip.count(token_id) > 0, r = rstrip.count(token_id) > 0;
    if (normalized.count(token_id) > 0) {
      impl->normalized_added.add(impl->normalize(vocab.tokens[id]), token_id, l, r);
    } else {
      impl->raw_added.add(vocab.tokens[id], token_id, l, r);
    }
  }
  impl->raw_added.finish();
  impl->normalized_added.finish();
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
              // The piece starts the text when it starts the normalized text of the stretch at offset 0 (HF
              // compares original offsets; they differ only if a normalizer inserted text that a normalized
              // added token then took, which no released tokenizer does).
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
      const std::string& space = impl.space_symbol;
      for (size_t pos = 0; pos < token.size();) {
        if (!space.empty() && token.compare(pos, space.size(), space) == 0) {
          out.push_back(' ');
          pos += space.size();
        } else {
          out.push_back(token[pos++]);
        }
      }
    }
    flush_bytes();
    if (impl.strip_decoded_prefix && out.starts_with(' ')) out.erase(0, 1);
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
