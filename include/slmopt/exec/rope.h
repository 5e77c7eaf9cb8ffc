// Rotary position embeddings in the Hugging Face layout: within each head, the first rotary_dim values rotate
// (partial rotary, Phi) and the rest pass through; element i pairs with element i + rotary_dim/2 (rotate_half),
// both rotated by the angle position · inv_freq[i]. The inverse frequencies (base, scaling, LongRope's factor
// sets and its attention_factor on cos/sin) come from ir/rope_frequencies.h, per layer (Gemma-3's local layers
// have their own base and no scaling). Angles, cosines and sines are computed in double and rounded to float
// once; rotation is in float.
#pragma once

#include <cstdint>
#include <vector>

#include "slmopt/ir/config.h"

namespace slmopt {

class RotaryEmbedding {
 public:
  RotaryEmbedding() = default;
  // The rotation of the global layers (rope_theta, rope_scaling).
  explicit RotaryEmbedding(const Config& config);
  // The rotation of layer `layer` (its base; scaling only where it applies).
  RotaryEmbedding(const Config& config, int64_t layer);

  int64_t head_dim() const { return head_dim_; }
  int64_t rotary_dim() const { return 2 * half_; }
  const std::vector<double>& inverse_frequencies() const { return sets_[0].inv_freq; }
  bool has_long_factors() const { return sets_.size() > 1; }

  // Rotates n_heads consecutive head vectors (n_heads · head_dim floats) of one token at `position`; with
  // long_factors, LongRope's long factor set (ignored when the rotation has none).
  void apply(float* heads, int64_t n_heads, int64_t position, bool long_factors = false) const;

 private:
  // One set of frequencies with cos/sin of the first positions tabulated (the same values apply() computes
  // for later positions), so a forward pass does not spend its time in trigonometry.
  struct FactorSet {
    std::vector<double> inv_freq;
    std::vector<float> cos_table, sin_table;  // [tabulated_, half_]
  };
  static constexpr int64_t kMaxTabulatedPositions = 8192;
  void init(const Config& config, int64_t layer_or_global);
  void angles(const FactorSet& set, int64_t position, float* cos_out, float* sin_out) const;

  int64_t head_dim_ = 0, half_ = 0, tabulated_ = 0;
  double attention_factor_ = 1.0;  // LongRope: cos and sin are multiplied by it
  std::vector<FactorSet> sets_;    // [short/only, long]
};

// The scaled inverse frequencies of the global layers (rotary_dim/2 values), for tests and exporters.
std::vector<double> rope_inverse_frequencies(const Config& config);

}  // namespace slmopt
