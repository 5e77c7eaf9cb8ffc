// Helpers on the format-neutral Vocab shared by the tokenizer (text/) and the tokenizer file writers (io/):
// which split pattern a byte-level vocabulary means, and BPE merges for score-only SentencePiece vocabularies.
#include "slmopt/ir/vocab.h"

#include <algorithm>
#include <cstddef>
#include <string_view>
#include <unordered_map>

namespace slmopt {

std::string effective_split_regex(const Vocab& vocab) {
  if (!vocab.split_regex.empty()) return vocab.split_regex;
  if (vocab.pre == "llama-bpe" || vocab.pre == "llama3" || vocab.pre == "llama-v3") return kLlama3SplitRegex;
  if (vocab.pre == "qwen2") return kQwen2SplitRegex;
  return kGpt2SplitRegex;
}

std::string pre_name_for_split_regex(const std::string& regex) {
  if (regex == kGpt2SplitRegex) return "gpt-2";
  if (regex == kLlama3SplitRegex) return "llama-bpe";
  if (regex == kQwen2SplitRegex) return "qwen2";
  return "default";
}

namespace {

// Length of the UTF-8 sequence starting with byte c (1 for stray continuation bytes, so splitting advances).
size_t utf8_length(unsigned char c) {
  if (c >= 0xF0 && c < 0xF8) return 4;
  if (c >= 0xE0) return c < 0xF0 ? 3 : 1;
  if (c >= 0xC0) return 2;
  return 1;
}

}  // namespace

std::vector<std::string> merges_from_scores(const Vocab& vocab) {
  auto is_normal = [&](size_t id) {
    return id >= vocab.types.size() || vocab.types[id] == TokenType::Normal;
  };
  std::unordered_map<std::string_view, int32_t> ids;
  ids.reserve(vocab.tokens.size());
  for (size_t id = 0; id < vocab.tokens.size(); ++id) {
    if (is_normal(id)) ids.emplace(vocab.tokens[id], static_cast<int32_t>(id));
  }
  struct Candidate {
    float score;
    int32_t merged, left, right;
    size_t split;  // byte offset of the split inside the merged token
  };
  std::vector<Candidate> candidates;
  for (size_t id = 0; id < vocab.tokens.size(); ++id) {
    if (!is_normal(id) || vocab.tokens[id].size() < 2) continue;
    const std::string_view token = vocab.tokens[id];
    const float score = id < vocab.scores.size() ? vocab.scores[id] : 0.0f;
    for (size_t split = utf8_length(static_cast<unsigned char>(token[0])); split < token.size();
         split += utf8_length(static_cast<unsigned char>(token[split]))) {
      const auto left = ids.find(token.substr(0, split));
      const auto right = ids.find(token.substr(split));
      if (left == ids.end() || right == ids.end()) continue;
      candidates.push_back({score, static_cast<int32_t>(id), left->second, right->second, split});
    }
  }
  std::stable_sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.merged != b.merged) return a.merged < b.merged;
    if (a.left != b.left) return a.left < b.left;
    return a.right < b.right;
  });
  std::vector<std::string> merges;
  merges.reserve(candidates.size());
  for (const Candidate& c : candidates) {
    const std::string& token = vocab.tokens[static_cast<size_t>(c.merged)];
    merges.push_back(token.substr(0, c.split) + " " + token.substr(c.split));
  }
  return merges;
}

}  // namespace slmopt
