// Rotary position embeddings in the Hugging Face layout: within each head, element i pairs with element
// i + head_dim/2 (rotate_half), both rotated by the angle position · inv_freq[i].
//
// inv_freq[i] = theta^(-2i/head_dim), then adjusted by the config's rope_scaling:
// - linear: inv_freq / factor (the same as dividing positions by factor);
// - llama3: frequencies whose wavelength 2π/inv_freq exceeds original_max_position / low_freq_factor are
//   divided by factor, those shorter than original_max_position / high_freq_factor are kept, and the band in
//   between is interpolated with smooth = (original_max_position / wavelength − low_freq_factor) /
//   (high_freq_factor − low_freq_factor): (1 − smooth) · inv_freq / factor + smooth · inv_freq.
// Angles, cosines and sines are computed in double and rounded to float once; rotation is in float.
#pragma once

#include <cstdint>
#include <vector>

#include "slmopt/ir/config.h"

namespace slmopt {

class RotaryEmbedding {
 public:
  RotaryEmbedding() = default;
  explicit RotaryEmbedding(const Config& config);

  int64_t head_dim() const { return head_dim_; }
  const std::vector<double>& inverse_frequencies() const { return inv_freq_; }

  // Rotates n_heads consecutive head vectors (n_heads · head_dim floats) of one token at `position`.
  void apply(float* heads, int64_t n_heads, int64_t position) const;

 private:
  // cos/sin of the first positions are tabulated (the same values apply() computes for later positions), so
  // a forward pass does not spend its time in trigonometry.
  static constexpr int64_t kMaxTabulatedPositions = 8192;
  void angles(int64_t position, float* cos_out, float* sin_out) const;

  int64_t head_dim_ = 0;
  std::vector<double> inv_freq_;
  int64_t tabulated_ = 0;
  std::vector<float> cos_table_, sin_table_;  // [tabulated_, head_dim/2]
};

// The scaled inverse frequencies alone (head_dim/2 values), for tests and exporters.
std::vector<double> rope_inverse_frequencies(const Config& config);

}  // namespace slmopt
