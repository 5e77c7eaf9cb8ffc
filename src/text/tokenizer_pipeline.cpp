// The normalizer and pre-tokenizer steps of ir/vocab.h's TokenizerPipeline, with Hugging Face `tokenizers`'
// semantics (normalizers/{prepend,replace,unicode}.rs, pre_tokenizers/{split,digits,metaspace,byte_level}.rs and
// NormalizedString::split's delimiter behaviours):
//
//  * Prepend adds its text to a non-empty text; Replace replaces every non-overlapping occurrence, left to
//    right; NFC/NFD/NFKC/NFKD are Unicode normalization (utf8proc: a small C library with exactly these four
//    forms, where ICU would bring a large data package for the same tables).
//  * A pattern cuts a piece into its matches and the stretches between them (empty matches cut nothing). The
//    behaviour then decides: Isolated keeps every part, Removed drops the matches, MergedWithPrevious glues each
//    match to the part before it, MergedWithNext to the part after it, Contiguous joins runs of parts of the
//    same kind. Empty parts are dropped, as HF's PreTokenizedString::split does.
//  * Digits cuts at numeric characters (Unicode N*: Rust's char::is_numeric, llama.cpp's \p{N}): Isolated when
//    individual_digits, else Contiguous.
//  * Metaspace turns spaces into its replacement character, prefixes one per its scheme (Always: every piece;
//    First: the piece that starts the text) unless the piece already starts with one, and with `split` cuts
//    before every replacement character (MergedWithNext).
//  * ByteLevel (last): " " prefix when missing, GPT-2's regex (Isolated) when use_regex, then the bytes of each
//    piece through GPT-2's byte↔unicode table.
#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "slmopt/core/error.h"
#include "tokenizer_detail.h"

namespace slmopt::tokenizer_detail {

// ------------------------------------------------------------------------------------------------ Pattern

Pattern::Pattern(const std::string& pattern, bool literal) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  // DOLLAR_ENDONLY: "$" means the end of the text (as in JavaScript and llama.cpp's std::regex), not also the
  // position before a final newline.
  // (PCRE2_LITERAL admits only a few other options.)
  const uint32_t options = literal ? PCRE2_UTF | PCRE2_LITERAL : PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY;
  code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options, &error, &offset,
                        nullptr);
  if (code_ == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof message);
    throw_error(ErrorKind::BadInput, "tokenizer split pattern '{}' does not compile at offset {}: {}", pattern,
                offset, reinterpret_cast<const char*>(message));
  }
  pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // an interpreter fallback remains if JIT is unavailable
}

Pattern::~Pattern() { pcre2_code_free(code_); }

void Pattern::find_matches(std::string_view text, std::vector<Part>& out) const {
  out.clear();
  if (text.empty()) return;
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
    if (end == begin) {  // an empty match cuts nothing; step over one character
      if (begin >= text.size()) break;
      start = begin + utf8_sequence_length(static_cast<unsigned char>(text[begin]));
      continue;
    }
    if (begin > emitted) out.push_back({emitted, begin, false});
    out.push_back({begin, end, true});
    emitted = start = end;
  }
  if (emitted < text.size()) out.push_back({emitted, text.size(), false});
}

// Applies a delimiter behaviour to the parts of find_matches (HF NormalizedString::split), in place.
void apply_behavior(SplitBehavior behavior, std::vector<Part>& parts) {
  std::vector<Part> out;
  out.reserve(parts.size());
  switch (behavior) {
    case SplitBehavior::Isolated:
      return;
    case SplitBehavior::Removed:
      for (const Part& p : parts)
        if (!p.is_match) out.push_back(p);
      break;
    case SplitBehavior::Contiguous: {
      bool previous = false;
      for (const Part& p : parts) {
        if (!out.empty() && p.is_match == previous) {
          out.back().end = p.end;
        } else {
          out.push_back(p);
        }
        previous = p.is_match;
      }
      break;
    }
    case SplitBehavior::MergedWithPrevious: {
      bool previous = false;
      for (const Part& p : parts) {
        if (p.is_match && !previous && !out.empty()) {
          out.back().end = p.end;
        } else {
          out.push_back(p);
        }
        previous = p.is_match;
      }
      break;
    }
    case SplitBehavior::MergedWithNext: {
      bool following = false;
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (it->is_match && !following && !out.empty()) {
          out.back().begin = it->begin;
        } else {
          out.push_back(*it);
        }
        following = it->is_match;
      }
      std::reverse(out.begin(), out.end());
      break;
    }
  }
  parts = std::move(out);
}

// ------------------------------------------------------------------------------------------------ Normalizer

namespace {

std::string unicode_normalize(std::string_view text, NormalizerStep::Kind kind) {
  int options = UTF8PROC_STABLE;
  switch (kind) {
    case NormalizerStep::Kind::Nfc: options |= UTF8PROC_COMPOSE; break;
    case NormalizerStep::Kind::Nfd: options |= UTF8PROC_DECOMPOSE; break;
    case NormalizerStep::Kind::Nfkc: options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    case NormalizerStep::Kind::Nfkd: options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
    default: return std::string(text);
  }
  utf8proc_uint8_t* result = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                          static_cast<utf8proc_ssize_t>(text.size()), &result,
                                          static_cast<utf8proc_option_t>(options));
  if (n < 0) throw_error(ErrorKind::BadInput, "tokenizer: Unicode normalization failed: {}", utf8proc_errmsg(n));
  std::string out(reinterpret_cast<const char*>(result), static_cast<size_t>(n));
  std::free(result);
  return out;
}

void replace_all(std::string& text, const std::string& pattern, const std::string& content) {
  if (pattern.empty() || text.find(pattern) == std::string::npos) return;
  std::string out;
  out.reserve(text.size() + text.size() / 4);
  size_t pos = 0;
  for (size_t hit; (hit = text.find(pattern, pos)) != std::string::npos; pos = hit + pattern.size()) {
    out.append(text, pos, hit - pos);
    out.append(content);
  }
  out.append(text, pos, std::string::npos);
  text = std::move(out);
}

}  // namespace

std::string normalize(const std::vector<NormalizerStep>& steps, std::string_view text) {
  std::string out(text);
  for (const NormalizerStep& step : steps) {
    switch (step.kind) {
      case NormalizerStep::Kind::Prepend:
        if (!out.empty()) out.insert(0, step.content);
        break;
      case NormalizerStep::Kind::Replace:
        replace_all(out, step.pattern, step.content);
        break;
      default:
        out = unicode_normalize(out, step.kind);
        break;
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------------------ PreTokenizer

struct PreTokenizer::Step {
  PreTokenizerStep spec;
  std::unique_ptr<Pattern> pattern;  // Split / Digits / Metaspace with split / ByteLevel with use_regex
  SplitBehavior behavior = SplitBehavior::Isolated;
  bool invert = false;
};

PreTokenizer::PreTokenizer(const std::vector<PreTokenizerStep>& steps) {
  for (size_t i = 0; i < steps.size(); ++i) {
    const PreTokenizerStep& s = steps[i];
    auto step = std::make_unique<Step>();
    step->spec = s;
    switch (s.kind) {
      case PreTokenizerStep::Kind::Split:
        step->pattern = std::make_unique<Pattern>(s.pattern, s.literal);
        step->behavior = s.behavior;
        step->invert = s.invert;
        break;
      case PreTokenizerStep::Kind::Digits:
        step->pattern = std::make_unique<Pattern>(R"(\p{N})", false);
        step->behavior = s.individual_digits ? SplitBehavior::Isolated : SplitBehavior::Contiguous;
        break;
      case PreTokenizerStep::Kind::Metaspace:
        if (s.replacement.empty() || utf8_sequence_length(static_cast<unsigned char>(s.replacement[0])) !=
                                         s.replacement.size()) {
          throw_error(ErrorKind::BadInput, "tokenizer: Metaspace replacement '{}' is not one character",
                      s.replacement);
        }
        if (s.split) step->pattern = std::make_unique<Pattern>(s.replacement, true);
        step->behavior = SplitBehavior::MergedWithNext;
        break;
      case PreTokenizerStep::Kind::ByteLevel:
        if (i + 1 != steps.size()) {
          throw_error(ErrorKind::Unsupported, "tokenizer: a pre-tokenizer step after ByteLevel is not supported");
        }
        if (s.use_regex) step->pattern = std::make_unique<Pattern>(kGpt2SplitRegex, false);
        byte_level_ = true;
        break;
    }
    steps_.push_back(std::move(step));
  }
}

PreTokenizer::~PreTokenizer() = default;

void PreTokenizer::cut(const Step& step, Piece&& piece, std::vector<Piece>& out) const {
  thread_local std::vector<Part> parts;
  if (!step.pattern) {
    out.push_back(std::move(piece));
    return;
  }
  step.pattern->find_matches(piece.text, parts);
  if (step.invert)
    for (Part& p : parts) p.is_match = !p.is_match;
  apply_behavior(step.behavior, parts);
  for (const Part& p : parts) {
    if (p.end > p.begin) out.push_back({piece.text.substr(p.begin, p.end - p.begin), piece.first && p.begin == 0});
  }
}

void PreTokenizer::run(std::string_view text, bool first, std::vector<std::string>& words) const {
  words.clear();
  if (text.empty()) return;
  std::vector<Piece> pieces, next;
  pieces.push_back({std::string(text), first});
  for (const auto& step_ptr : steps_) {
    const Step& step = *step_ptr;
    next.clear();
    for (Piece& piece : pieces) {
      switch (step.spec.kind) {
        case PreTokenizerStep::Kind::Metaspace: {
          std::string replaced;
          replaced.reserve(piece.text.size() + 8);
          for (const char c : piece.text) {
            if (c == ' ') {
              replaced.append(step.spec.replacement);
            } else {
              replaced.push_back(c);
            }
          }
          const bool prefix = step.spec.prepend == MetaspacePrepend::Always ||
                              (step.spec.prepend == MetaspacePrepend::First && piece.first);
          if (prefix && !replaced.starts_with(step.spec.replacement)) replaced.insert(0, step.spec.replacement);
          piece.text = std::move(replaced);
          cut(step, std::move(piece), next);
          break;
        }
        case PreTokenizerStep::Kind::ByteLevel: {
          if (step.spec.add_prefix_space && !piece.text.starts_with(' ')) piece.text.insert(0, " ");
          const size_t from = next.size();
          cut(step, std::move(piece), next);
          std::string mapped;
          for (size_t i = from; i < next.size(); ++i) {
            mapped.clear();
            byte_level_encode(next[i].text, mapped);
            next[i].text.swap(mapped);
          }
          break;
        }
        default:
          cut(step, std::move(piece), next);
          break;
      }
    }
    pieces.swap(next);
  }
  words.reserve(pieces.size());
  for (Piece& piece : pieces) words.push_back(std::move(piece.text));
}

}  // namespace slmopt::tokenizer_detail
