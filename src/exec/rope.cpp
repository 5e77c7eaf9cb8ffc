// Rotary embeddings (see rope.h for the formulas). The scaling rules follow Hugging Face's
// _compute_linear_scaling_rope_parameters and _compute_llama3_parameters.
#include "slmopt/exec/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "slmopt/core/error.h"

namespace slmopt {

std::vector<double> rope_inverse_frequencies(const Config& config) {
  const int64_t half = config.head_dim / 2;
  const RopeScaling& scaling = config.rope_scaling;
  std::vector<double> inv_freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    double f = std::pow(config.rope_theta, -static_cast<double>(2 * i) / static_cast<double>(config.head_dim));
    switch (scaling.type) {
      case RopeScalingType::None:
        break;
      case RopeScalingType::Linear:
        f /= scaling.factor;
        break;
      case RopeScalingType::LongRope:
        throw_error(ErrorKind::Unsupported, "LongRoPE scaling is not supported by this forward pass yet");
      case RopeScalingType::Llama3: {
        const double old_context = static_cast<double>(scaling.original_max_position);
        const double low_freq_wavelength = old_context / scaling.low_freq_factor;
        const double high_freq_wavelength = old_context / scaling.high_freq_factor;
        const double wavelength = 2 * std::numbers::pi / f;
        if (wavelength > low_freq_wavelength) {
          f /= scaling.factor;
        } else if (wavelength >= high_freq_wavelength) {
          const double smooth = (old_context / wavelength - scaling.low_freq_factor) /
                                (scaling.high_freq_factor - scaling.low_freq_factor);
          f = (1 - smooth) * f / scaling.factor + smooth * f;
        }
        break;
      }
    }
    inv_freq[static_cast<size_t>(i)] = f;
  }
  return inv_freq;
}

RotaryEmbedding::RotaryEmbedding(const Config& config)
    : head_dim_(config.head_dim), inv_freq_(rope_inverse_frequencies(config)) {
  const int64_t half = head_dim_ / 2;
  const int64_t tabulated = std::clamp<int64_t>(config.max_position, 0, kMaxTabulatedPositions);
  cos_table_.resize(static_cast<size_t>(tabulated * half));
  sin_table_.resize(static_cast<size_t>(tabulated * half));
  for (int64_t p = 0; p < tabulated; ++p) angles(p, cos_table_.data() + p * half, sin_table_.data() + p * half);
  tabulated_ = tabulated;
}

void RotaryEmbedding::angles(int64_t position, float* cos_out, float* sin_out) const {
  const int64_t half = head_dim_ / 2;
  if (position >= 0 && position < tabulated_) {
    std::copy_n(cos_table_.data() + position * half, half, cos_out);
    std::copy_n(sin_table_.data() + position * half, half, sin_out);
    return;
  }
  for (int64_t i = 0; i < half; ++i) {
    const double angle = static_cast<double>(position) * inv_freq_[static_cast<size_t>(i)];
    cos_out[i] = static_cast<float>(std::cos(angle));
    sin_out[i] = static_cast<float>(std::sin(angle));
  }
}

void RotaryEmbedding::apply(float* heads, int64_t n_heads, int64_t position) const {
  const int64_t half = head_dim_ / 2;
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
  angles(position, cos_v, sin_v);
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
