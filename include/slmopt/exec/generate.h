// Greedy decoding with a KV cache: the simplest generation loop, used to smoke-test models end to end.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "slmopt/exec/model_runner.h"

namespace slmopt {

// Feeds `prompt` (at least one token), then repeatedly appends the most likely next token, up to
// max_new_tokens or until stop_token is produced (included in the result). Returns the new tokens only.
std::vector<int32_t> generate_greedy(const ModelRunner& runner, std::span<const int32_t> prompt,
                                     int64_t max_new_tokens, std::optional<int32_t> stop_token = std::nullopt);

}  // namespace slmopt
