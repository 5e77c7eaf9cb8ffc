#include "slmopt/ir/token_index.h"

#include <bit>

namespace slmopt {

namespace {

uint64_t text_hash(std::string_view text) { return std::hash<std::string_view>{}(text); }

}  // namespace

TokenIndex::TokenIndex(const std::vector<std::string>& tokens, RepeatedText repeated,
                       const std::function<void(int32_t earlier, int32_t repeat)>& on_repeat)
    : tokens_(tokens) {
  slots_.assign(std::bit_ceil(std::max<size_t>(2 * tokens.size(), 16)), Slot{0, -1});
  mask_ = slots_.size() - 1;
  for (size_t id = 0; id < tokens.size(); ++id) {
    const uint64_t hash = text_hash(tokens[id]);
    const auto tag = static_cast<uint32_t>(hash >> 32);
    for (size_t at = hash & mask_;; at = (at + 1) & mask_) {
      Slot& slot = slots_[at];
      if (slot.id < 0) {
        slot = {tag, static_cast<int32_t>(id)};
        break;
      }
      if (slot.tag == tag && tokens[static_cast<size_t>(slot.id)] == tokens[id]) {
        if (on_repeat) on_repeat(slot.id, static_cast<int32_t>(id));
        if (repeated == RepeatedText::KeepLastId) slot.id = static_cast<int32_t>(id);
        break;
      }
    }
  }
}

std::optional<int32_t> TokenIndex::find(std::string_view text) const {
  const uint64_t hash = text_hash(text);
  const auto tag = static_cast<uint32_t>(hash >> 32);
  for (size_t at = hash & mask_;; at = (at + 1) & mask_) {
    const Slot& slot = slots_[at];
    if (slot.id < 0) return std::nullopt;
    if (slot.tag == tag && tokens_[static_cast<size_t>(slot.id)] == text) return slot.id;
  }
}

}  // namespace slmopt
