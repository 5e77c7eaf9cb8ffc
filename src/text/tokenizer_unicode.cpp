// UTF-8 validation and lossy decoding, and GPT-2's byte↔unicode table, for text/tokenizer.
//
// Well-formed UTF-8 (Unicode Table 3-7): 00–7F | C2–DF 80–BF | E0 A0–BF 80–BF | E1–EC 80–BF 80–BF |
// ED 80–9F 80–BF | EE–EF 80–BF 80–BF | F0 90–BF 80–BF 80–BF | F1–F3 80–BF 80–BF 80–BF | F4 80–8F 80–BF 80–BF.
// The second-byte ranges exclude overlongs, surrogates and code points past U+10FFFF.
#include <string>

#include "tokenizer_detail.h"

namespace slmopt::tokenizer_detail {
namespace {

struct SecondByteRange {
  unsigned char low, high;
};

// Sequence length for a lead byte, 0 when the byte cannot lead one.
size_t lead_length(unsigned char c) {
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return 2;
  if (c >= 0xE0 && c <= 0xEF) return 3;
  if (c >= 0xF0 && c <= 0xF4) return 4;
  return 0;
}

SecondByteRange second_byte_range(unsigned char lead) {
  switch (lead) {
    case 0xE0: return {0xA0, 0xBF};
    case 0xED: return {0x80, 0x9F};
    case 0xF0: return {0x90, 0xBF};
    case 0xF4: return {0x80, 0x8F};
    default: return {0x80, 0xBF};
  }
}

// The sequence at text[pos]: a well-formed one (valid), or the maximal ill-formed subpart (≥ 1 byte) that one
// U+FFFD replaces.
struct Scan {
  size_t length;
  bool valid;
};

Scan scan(std::string_view text, size_t pos) {
  const auto lead = static_cast<unsigned char>(text[pos]);
  const size_t need = lead_length(lead);
  if (need == 0) return {1, false};
  if (need == 1) return {1, true};
  size_t have = 1;
  while (have < need && pos + have < text.size()) {
    const auto c = static_cast<unsigned char>(text[pos + have]);
    const SecondByteRange range = have == 1 ? second_byte_range(lead) : SecondByteRange{0x80, 0xBF};
    if (c < range.low || c > range.high) break;
    ++have;
  }
  return {have, have == need};
}

}  // namespace

size_t utf8_sequence_length(unsigned char lead) {
  const size_t n = lead_length(lead);
  return n == 0 ? 1 : n;
}

size_t find_invalid_utf8(std::string_view text) {
  for (size_t pos = 0; pos < text.size();) {
    if (static_cast<unsigned char>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const Scan s = scan(text, pos);
    if (!s.valid) return pos;
    pos += s.length;
  }
  return std::string_view::npos;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t pos = 0; pos < bytes.size();) {
    const Scan s = scan(bytes, pos);
    if (s.valid) {
      out.append(bytes.substr(pos, s.length));
    } else {
      append_utf8(out, 0xFFFD);
    }
    pos += s.length;
  }
  return out;
}

const std::array<uint32_t, 256>& byte_to_code_point() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[b] = printable ? b : next++;
    }
    return t;
  }();
  return table;
}

void byte_level_encode(std::string_view bytes, std::string& out) {
  const auto& table = byte_to_code_point();
  for (const char c : bytes) append_utf8(out, table[static_cast<unsigned char>(c)]);
}

bool byte_level_decode(std::string_view token, std::string& out) {
  // Inverse table over the code points it uses (all below 0x144).
  static const std::array<int16_t, 0x144> inverse = [] {
    std::array<int16_t, 0x144> inv;
    inv.fill(-1);
    const auto& table = byte_to_code_point();
    for (int b = 0; b < 256; ++b) inv[table[static_cast<size_t>(b)]] = static_cast<int16_t>(b);
    return inv;
  }();
  const size_t start = out.size();
  for (size_t pos = 0; pos < token.size();) {
    const auto lead = static_cast<unsigned char>(token[pos]);
    uint32_t cp;
    size_t len;
    if (lead < 0x80) {
      cp = lead;
      len = 1;
    } else if ((lead & 0xE0) == 0xC0 && pos + 1 < token.size() &&
               (static_cast<unsigned char>(token[pos + 1]) & 0xC0) == 0x80) {
      cp = ((lead & 0x1Fu) << 6) | (static_cast<unsigned char>(token[pos + 1]) & 0x3Fu);
      len = 2;
    } else {  // every table code point is at most two bytes long
      out.resize(start);
      return false;
    }
    if (cp >= inverse.size() || inverse[cp] < 0) {
      out.resize(start);
      return false;
    }
    out.push_back(static_cast<char>(inverse[cp]));
    pos += len;
  }
  return true;
}

}  // namespace slmopt::tokenizer_detail
