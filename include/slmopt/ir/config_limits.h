// Upper bounds on a Config's sizes, far beyond any real model (Llama-3.1-405B: 126 layers, hidden 16384, FFN
// 53248, 128 heads, vocab 128256). They keep every size product a loader or the forward pass forms (heads ×
// head_dim, vocab × hidden, layers × tensors) well inside int64 and per-layer loops short. Config::validate
// applies them; readers call check_config_sizes as soon as the sizes are read, before anything is sized by them
// (per-layer flag lists, tensor-name lists): a 650-byte config.json with 2^31 layers used to grow memory without
// bound enumerating tensor names.
#pragma once

#include <cstdint>
#include <string>

#include "slmopt/ir/config.h"

namespace slmopt {

inline constexpr int64_t kMaxHiddenSize = int64_t{1} << 20;
inline constexpr int64_t kMaxFfnSize = int64_t{1} << 22;
inline constexpr int64_t kMaxLayers = int64_t{1} << 12;
inline constexpr int64_t kMaxHeads = int64_t{1} << 14;
inline constexpr int64_t kMaxHeadDim = int64_t{1} << 16;
inline constexpr int64_t kMaxVocabSize = int64_t{1} << 31;
inline constexpr int64_t kMaxPositions = int64_t{1} << 40;

// Error(BadInput) "<source>: <field> <value> is beyond the supported maximum <limit>", fields named as in
// config.json (hidden_size, num_hidden_layers, ...).
void check_config_sizes(const Config& config, const std::string& source);

}  // namespace slmopt
