// Token corpora and evaluation/calibration windows; the protocols are documented in text/dataset.h.
#include "slmopt/text/dataset.h"

#include <algorithm>
#include <cctype>

#include "slmopt/core/error.h"
#include "slmopt/core/mapped_file.h"

namespace slmopt {
namespace {

bool ends_with_bin(const std::string& path) {
  if (path.size() < 4) return false;
  std::string ext = path.substr(path.size() - 4);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".bin";
}

std::vector<int32_t> read_binary_ids(const std::string& path, int64_t vocab_size) {
  const auto file = MappedFile::open(path);
  if (file->size() % 4 != 0) {
    throw_error(ErrorKind::BadInput, "{}: size {} bytes is not a multiple of 4 (uint32 token ids)", path,
                file->size());
  }
  std::vector<int32_t> ids(file->size() / 4);
  const uint8_t* bytes = file->data();
  for (size_t i = 0; i < ids.size(); ++i) {
    const uint8_t* p = bytes + 4 * i;
    const uint32_t id = uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
    if (static_cast<int64_t>(id) >= vocab_size) {
      throw_error(ErrorKind::BadInput, "{}: token {} (byte offset {}) is {}, outside the vocabulary of {}", path, i,
                  4 * i, id, vocab_size);
    }
    ids[i] = static_cast<int32_t>(id);
  }
  return ids;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

std::vector<int32_t> read_text_ids(const std::string& path, int64_t vocab_size) {
  const std::string text = read_text_file(path);
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 4);
  size_t line = 1, line_start = 0;
  for (size_t pos = 0; pos < text.size();) {
    const char c = text[pos];
    if (is_space(c)) {
      if (c == '\n') {
        ++line;
        line_start = pos + 1;
      }
      ++pos;
      continue;
    }
    const size_t start = pos;
    int64_t value = 0;
    bool too_large = false;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      value = value * 10 + (text[pos] - '0');
      if (value >= vocab_size) too_large = true;
      if (too_large) value = vocab_size;  // keep it bounded; the id is refused below
      ++pos;
    }
    if (pos < text.size() && !is_space(text[pos])) {
      size_t end = pos;
      while (end < text.size() && !is_space(text[end]) && end - start < 20) ++end;
      throw_error(ErrorKind::BadInput, "{}: line {}, column {}: '{}' is not a token id", path, line,
                  start - line_start + 1, text.substr(start, end - start));
    }
    if (too_large) {
      throw_error(ErrorKind::BadInput, "{}: line {}, column {}: token id {} is outside the vocabulary of {}", path,
                  line, start - line_start + 1, text.substr(start, std::min<size_t>(pos - start, 20)), vocab_size);
    }
    ids.push_back(static_cast<int32_t>(value));
  }
  return ids;
}

// splitmix64 (Steele, Lea, Flood 2014): tiny, well mixed, and the same on every platform.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, bound): rejects the low values that would make the remainder biased.
  uint64_t below(uint64_t bound) {
    const uint64_t threshold = (0 - bound) % bound;
    for (;;) {
      const uint64_t r = next();
      if (r >= threshold) return r % bound;
    }
  }

 private:
  uint64_t state_;
};

}  // namespace

std::vector<int32_t> read_token_file(const std::string& path, int64_t vocab_size) {
  if (vocab_size <= 0) throw_error(ErrorKind::Usage, "{}: vocabulary size {} must be positive", path, vocab_size);
  return ends_with_bin(path) ? read_binary_ids(path, vocab_size) : read_text_ids(path, vocab_size);
}

std::vector<int32_t> tokenize_file(const Tokenizer& tokenizer, const std::string& path) {
  const std::string text = read_text_file(path);
  try {
    return tokenizer.encode(text, /*add_special=*/false);
  } catch (const Error& e) {
    throw Error(e.kind(), fmt::format("{}: {}", path, e.what()));
  }
}

std::vector<EvalWindow> make_eval_windows(const std::vector<int32_t>& corpus, int64_t ctx, std::optional<int32_t> bos,
                                          int64_t max_windows) {
  if (ctx < 2) throw_error(ErrorKind::Usage, "evaluation context {} is too short (at least 2 tokens)", ctx);
  if (max_windows < 0) throw_error(ErrorKind::Usage, "maximum number of windows {} is negative", max_windows);
  const size_t piece = static_cast<size_t>(bos ? ctx - 1 : ctx);
  // Scored tokens in a piece of k corpus tokens: k with BOS, k − 1 without.
  const size_t min_piece = bos ? 2 : 3;
  std::vector<EvalWindow> windows;
  for (size_t start = 0; start < corpus.size(); start += piece) {
    if (max_windows > 0 && static_cast<int64_t>(windows.size()) == max_windows) break;
    const size_t length = std::min(piece, corpus.size() - start);
    if (length < piece && length < min_piece) break;  // a short last piece needs 2 scored tokens
    EvalWindow window;
    window.tokens.reserve(length + 1);
    if (bos) window.tokens.push_back(*bos);
    window.tokens.insert(window.tokens.end(), corpus.begin() + static_cast<std::ptrdiff_t>(start),
                         corpus.begin() + static_cast<std::ptrdiff_t>(start + length));
    window.first_scored = 1;
    windows.push_back(std::move(window));
  }
  return windows;
}

std::vector<std::vector<int32_t>> sample_calibration_windows(const std::vector<int32_t>& corpus, int64_t n_samples,
                                                             int64_t seqlen, uint64_t seed,
                                                             std::optional<int32_t> bos) {
  if (n_samples < 1) throw_error(ErrorKind::Usage, "calibration sample count {} must be at least 1", n_samples);
  if (seqlen < 2) throw_error(ErrorKind::Usage, "calibration window length {} is too short (at least 2)", seqlen);
  if (static_cast<int64_t>(corpus.size()) < seqlen) {
    throw_error(ErrorKind::BadInput, "calibration corpus has {} tokens, fewer than the window length {}",
                corpus.size(), seqlen);
  }
  const size_t take = static_cast<size_t>(bos ? seqlen - 1 : seqlen);
  const uint64_t starts = corpus.size() - take + 1;  // every offset whose slice fits
  SplitMix64 rng(seed);
  std::vector<std::vector<int32_t>> windows(static_cast<size_t>(n_samples));
  for (auto& window : windows) {
    const size_t start = static_cast<size_t>(rng.below(starts));
    window.reserve(static_cast<size_t>(seqlen));
    if (bos) window.push_back(*bos);
    window.insert(window.end(), corpus.begin() + static_cast<std::ptrdiff_t>(start),
                  corpus.begin() + static_cast<std::ptrdiff_t>(start + take));
  }
  return windows;
}

}  // namespace slmopt
