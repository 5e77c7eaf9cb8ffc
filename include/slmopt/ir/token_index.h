// Ids of a vocabulary's tokens by their text. Readers check every merge of a tokenizer against it (Gemma 3:
// 262k tokens, three lookups for each of 515k merges), where a node-based std::unordered_map spent most of the
// time in cache misses on its nodes and on the token strings. This is one flat array of (hash tag, id) slots with
// linear probing at a load of at most one half: a lookup reads one or two adjacent slots and compares the text
// only when the 32-bit tag matches.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace slmopt {

// Which id a text that several tokens share maps to. Hugging Face's vocab map (and so the encoder) keeps the
// last; a reader checking a file may prefer the first.
enum class RepeatedText { KeepFirstId, KeepLastId };

class TokenIndex {
 public:
  // Indexes tokens[id] for every id; `on_repeat(earlier, repeat)` is told of each text seen again, with the id
  // the index held for it until then. `tokens` must outlive the index and not change.
  explicit TokenIndex(const std::vector<std::string>& tokens, RepeatedText repeated = RepeatedText::KeepFirstId,
                      const std::function<void(int32_t earlier, int32_t repeat)>& on_repeat = {});

  std::optional<int32_t> find(std::string_view text) const;

 private:
  struct Slot {
    uint32_t tag;  // the high half of the text's hash
    int32_t id;    // -1: empty
  };
  const std::vector<std::string>& tokens_;
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

}  // namespace slmopt
