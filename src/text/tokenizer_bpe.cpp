// Hugging Face's BPE model, step for step (tokenizers/src/models/bpe: merge_word + Word::merge_all):
//
//  * Each character of the word becomes a symbol. A character missing from the vocabulary becomes its <0xNN>
//    byte tokens when byte fallback is on and all of them exist; otherwise the unk token (a run of unknown
//    characters is one unk when fuse_unk), or nothing when there is no unk token. HF keeps a pending unk until
//    the next known character, so byte-fallback symbols can precede it; that order is reproduced.
//  * A min-heap holds every adjacent pair that has a merge, keyed by (rank, position). The top entry is merged
//    unless it went stale (its left symbol was absorbed or its right neighbour changed); the new symbol's pairs
//    with its neighbours are pushed. Symbols form a linked list, so a word of n characters costs O(n log n).
//  * ignore_merges: a word that is itself a token is returned whole.
#include <algorithm>
#include <bit>
#include <cstdio>
#include <functional>

#include "slmopt/core/error.h"
#include "tokenizer_detail.h"

namespace slmopt::tokenizer_detail {
namespace {

// Words this long (SentencePiece-style text has no pre-tokenizer, so a whole file can be one word) use the
// bucket queue: one small heap per rank keeps the working set in cache, where one heap of every pair does not.
constexpr size_t kBucketQueueMinSymbols = 4096;

}  // namespace

// Pops the smallest (rank, position) first.
class BpeModel::HeapQueue {
 public:
  void push(const Candidate& c) {
    heap_.push_back(c);
    std::push_heap(heap_.begin(), heap_.end(), std::greater<>());
  }
  bool pop(Candidate& out) {
    if (heap_.empty()) return false;
    std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
    out = heap_.back();
    heap_.pop_back();
    return true;
  }

 private:
  std::vector<Candidate> heap_;
};

// The same order as HeapQueue: a min-heap of positions per rank, drained lowest rank first. A push below the
// current rank moves the cursor back (rare: merges that use a token come after the merge that makes it).
class BpeModel::BucketQueue {
 public:
  explicit BucketQueue(size_t ranks) : buckets_(ranks) {}
  void push(const Candidate& c) {
    auto& bucket = buckets_[static_cast<size_t>(c.rank)];
    bucket.push_back({c.pos, c.result});
    std::push_heap(bucket.begin(), bucket.end(), std::greater<>());
    cursor_ = std::min(cursor_, static_cast<size_t>(c.rank));
  }
  bool pop(Candidate& out) {
    while (cursor_ < buckets_.size() && buckets_[cursor_].empty()) ++cursor_;
    if (cursor_ == buckets_.size()) return false;
    auto& bucket = buckets_[cursor_];
    std::pop_heap(bucket.begin(), bucket.end(), std::greater<>());
    out = {static_cast<int32_t>(cursor_), bucket.back().first, bucket.back().second};
    bucket.pop_back();
    return true;
  }

 private:
  std::vector<std::vector<std::pair<int32_t, int32_t>>> buckets_;  // (position, result) per rank
  size_t cursor_ = 0;
};

BpeModel::BpeModel(std::vector<std::string> tokens, const std::vector<std::string>& merges, Options options)
    // HF's vocab map keeps the last id of a repeated token text; so does this one.
    : tokens_(std::move(tokens)), ids_(tokens_, RepeatedText::KeepLastId), options_(options) {
  ascii_ids_.fill(-1);
  byte_ids_.fill(-1);
  for (int c = 0; c < 128; ++c) {
    if (const auto id = find(std::string(1, static_cast<char>(c)))) ascii_ids_[static_cast<size_t>(c)] = *id;
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    if (const auto id = find(name)) byte_ids_[static_cast<size_t>(b)] = *id;
  }
  merge_slots_.assign(std::bit_ceil(std::max<size_t>(2 * merges.size(), 16)), MergeSlot{kNoPair, Merge{-1, -1}});
  merge_mask_ = merge_slots_.size() - 1;
  std::string joined;  // reused: one allocation for every merge
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string_view merge = merges[rank];
    const size_t space = merge.find(' ');
    const auto left = space == std::string::npos ? std::nullopt : find(merge.substr(0, space));
    const auto right = space == std::string::npos ? std::nullopt : find(merge.substr(space + 1));
    std::optional<int32_t> result;
    if (left && right) result = find(joined.assign(merge.substr(0, space)).append(merge.substr(space + 1)));
    if (!result) {
      throw_error(ErrorKind::BadInput, "tokenizer merge {} ('{}') uses or makes a token not in the vocabulary",
                  rank, merge);
    }
    // A repeated pair takes its last rank, as HF's map collection does.
    merge_slot(pair_key(*left, *right)) = Merge{static_cast<int32_t>(rank), *result};
  }
  merges_count_ = merges.size();
}

std::optional<int32_t> BpeModel::find(std::string_view token) const { return ids_.find(token); }

BpeModel::Merge& BpeModel::merge_slot(uint64_t key) {
  for (size_t at = merge_at(key);; at = (at + 1) & merge_mask_) {
    MergeSlot& slot = merge_slots_[at];
    if (slot.key == key) return slot.merge;
    if (slot.key == kNoPair) {
      slot.key = key;
      return slot.merge;
    }
  }
}

const BpeModel::Merge* BpeModel::find_merge(int32_t left, int32_t right) const {
  if (left < 0 || right < 0) return nullptr;  // no merge has them, and (−1, −1) would be kNoPair's key
  const uint64_t key = pair_key(left, right);
  for (size_t at = merge_at(key);; at = (at + 1) & merge_mask_) {
    const MergeSlot& slot = merge_slots_[at];
    if (slot.key == key) return &slot.merge;
    if (slot.key == kNoPair) return nullptr;
  }
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    if (const auto id = find(word)) {
      out.push_back(*id);
      return;
    }
  }

  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  auto add = [&](int32_t id) {
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, -1, true});
    if (index > 0) symbols[static_cast<size_t>(index - 1)].next = index;
  };
  bool unk_pending = false;
  for (size_t pos = 0; pos < word.size();) {
    const auto lead = static_cast<unsigned char>(word[pos]);
    const size_t len = std::min(utf8_sequence_length(lead), word.size() - pos);
    const std::string_view ch = word.substr(pos, len);
    pos += len;
    std::optional<int32_t> id;
    if (lead < 0x80) {
      if (ascii_ids_[lead] >= 0) id = ascii_ids_[lead];
    } else {
      id = find(ch);
    }
    if (id) {
      if (unk_pending) add(*options_.unk_id);
      unk_pending = false;
      add(*id);
      continue;
    }
    if (options_.byte_fallback) {
      bool all = true;
      for (const char b : ch) all = all && byte_ids_[static_cast<unsigned char>(b)] >= 0;
      if (all) {
        for (const char b : ch) add(byte_ids_[static_cast<unsigned char>(b)]);
        continue;
      }
    }
    if (!options_.unk_id) continue;  // HF drops characters it has no token for
    if (unk_pending && !options_.fuse_unk) add(*options_.unk_id);
    unk_pending = true;
  }
  if (unk_pending) add(*options_.unk_id);

  if (symbols.size() >= kBucketQueueMinSymbols) {
    BucketQueue queue(merges_count_);
    merge_all(symbols, queue, out);
  } else {
    HeapQueue queue;
    merge_all(symbols, queue, out);
  }
}

template <typename Queue>
void BpeModel::merge_all(std::vector<Symbol>& symbols, Queue& queue, std::vector<int32_t>& out) const {
  auto push_pair = [&](int32_t left_pos) {
    const Symbol& left = symbols[static_cast<size_t>(left_pos)];
    if (left.next < 0) return;
    if (const Merge* m = find_merge(left.id, symbols[static_cast<size_t>(left.next)].id)) {
      queue.push({m->rank, left_pos, m->result});
    }
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) push_pair(i);

  Candidate top;
  while (queue.pop(top)) {
    Symbol& left = symbols[static_cast<size_t>(top.pos)];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[static_cast<size_t>(left.next)];
    const Merge* m = find_merge(left.id, right.id);
    if (m == nullptr || m->result != top.result) continue;  // stale: a neighbour changed since the push
    left.id = top.result;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = top.pos;
    if (left.prev >= 0) push_pair(left.prev);
    push_pair(top.pos);
  }
  for (const Symbol& s : symbols) {
    if (s.alive) out.push_back(s.id);
  }
}

}  // namespace slmopt::tokenizer_detail
