// Rotary embeddings (see rope.h). The frequencies are ir/rope_frequencies.h's, so the forward pass and the
// exporters rotate alike.
#include "slmopt/exec/rope.h"

#include <algorithm>
#include <cmath>

#include "slmopt/ir/rope_frequencies.h"

namespace slmopt {

std::vector<double> rope_inverse_frequencies(const Config& config) { return config_rope_inverse_frequencies(config); }

RotaryEmbedding::RotaryEmbedding(const Config& config) { init(config, -1); }
RotaryEmbedding::RotaryEmbedding(const Config& config, int64_t layer) { init(config, layer); }

void RotaryEmbedding::init(const Config& config, int64_t layer) {
  head_dim_ = config.head_dim;
  half_ = config.rotary_dims() / 2;
  const bool scaled = layer < 0 ? config.rope_scaling.type != RopeScalingType::None : config.layer_rope_scaled(layer);
  const bool longrope = scaled && config.rope_scaling.type == RopeScalingType::LongRope;
  attention_factor_ = layer_rope_attention_factor(config, layer);
  sets_.clear();
  for (bool long_factors : {false, true}) {
    if (long_factors && !longrope) break;
    FactorSet set;
    set.inv_freq = layer_rope_inverse_frequencies(config, layer, long_factors);
    sets_.push_back(std::move(set));
  }
  tabulated_ = 0;
  const int64_t tabulated = std::clamp<int64_t>(config.max_position, 0, kMaxTabulatedPositions);
  for (FactorSet& set : sets_) {
    set.cos_table.resize(static_cast<size_t>(tabulated * half_));
    set.sin_table.resize(static_cast<size_t>(tabulated * half_));
    for (int64_t p = 0; p < tabulated; ++p)
      angles(set, p, set.cos_table.data() + p * half_, set.sin_table.data() + p * half_);
  }
  tabulated_ = tabulated;
}

void RotaryEmbedding::angles(const FactorSet& set, int64_t position, float* cos_out, float* sin_out) const {
  if (position >= 0 && position < tabulated_) {
    std::copy_n(set.cos_table.data() + position * half_, half_, cos_out);
    std::copy_n(set.sin_table.data() + position * half_, half_, sin_out);
    return;
  }
  for (int64_t i = 0; i < half_; ++i) {
    const double angle = static_cast<double>(position) * set.inv_freq[static_cast<size_t>(i)];
    if (attention_factor_ == 1.0) {
      cos_out[i] = static_cast<float>(std::cos(angle));
      sin_out[i] = static_cast<float>(std::sin(angle));
    } else {
      cos_out[i] = static_cast<float>(std::cos(angle) * attention_factor_);
      sin_out[i] = static_cast<float>(std::sin(angle) * attention_factor_);
    }
  }
}

void RotaryEmbedding::apply(float* heads, int64_t n_heads, int64_t position, bool long_factors) const {
  const int64_t half = half_;
  if (half == 0 || sets_.empty()) return;
  const FactorSet& set = sets_[long_factors && sets_.size() > 1 ? 1 : 0];
  // One token's angles, shared by all its heads.
  float cos_buf[256], sin_buf[256];
  std::vector<float> cos_heap, sin_heap;
  float* cos_v = cos_buf;
  float* sin_v = sin_buf;
  if (half > 256) {
    cos_heap.resize(static_cast<size_t>(half));
    sin_heap.resize(static_cast<size_t>(half));
    cos_v = cos_heap.data();
    sin_v = sin_heap.data();
  }
  angles(set, position, cos_v, sin_v);
  for (int64_t h = 0; h < n_heads; ++h) {
    float* x = heads + h * head_dim_;
    for (int64_t i = 0; i < half; ++i) {
      const float a = x[i], b = x[i + half];
      x[i] = a * cos_v[i] - b * sin_v[i];
      x[i + half] = b * cos_v[i] + a * sin_v[i];
    }
  }
}

}  // namespace slmopt
