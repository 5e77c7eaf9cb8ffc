// See rope_frequencies.h; the scaling rules follow Hugging Face's _compute_linear_scaling_rope_parameters,
// _compute_llama3_parameters and _compute_longrope_parameters.
#include "slmopt/ir/rope_frequencies.h"

#include <cmath>
#include <numbers>

namespace slmopt {
namespace {

std::vector<double> inverse_frequencies(const Config& config, double theta, bool scaled, bool long_factors) {
  const int64_t dims = config.rotary_dims(), half = dims / 2;
  const RopeScaling& s = config.rope_scaling;
  const RopeScalingType type = scaled ? s.type : RopeScalingType::None;
  std::vector<double> inv_freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    const double exponent = static_cast<double>(2 * i) / static_cast<double>(dims);
    double f = std::pow(theta, -exponent);
    if (type == RopeScalingType::Linear) {
      f /= s.factor;
    } else if (type == RopeScalingType::Llama3) {
      const double old_context = static_cast<double>(s.original_max_position);
      const double wavelength = 2 * std::numbers::pi / f;
      if (wavelength > old_context / s.low_freq_factor) {
        f /= s.factor;
      } else if (wavelength >= old_context / s.high_freq_factor) {
        const double smooth = (old_context / wavelength - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = (1 - smooth) * f / s.factor + smooth * f;
      }
    } else if (type == RopeScalingType::LongRope) {
      const std::vector<double>& ext = long_factors ? s.long_factor : s.short_factor;
      f = 1.0 / (ext.at(static_cast<size_t>(i)) * std::pow(theta, exponent));
    }
    inv_freq[static_cast<size_t>(i)] = f;
  }
  return inv_freq;
}

}  // namespace

std::vector<double> config_rope_inverse_frequencies(const Config& config) {
  return inverse_frequencies(config, config.rope_theta, true, false);
}

// layer < 0: the global layers.
std::vector<double> layer_rope_inverse_frequencies(const Config& config, int64_t layer, bool long_factors) {
  if (layer < 0) return inverse_frequencies(config, config.rope_theta, true, long_factors);
  return inverse_frequencies(config, config.layer_rope_theta(layer), config.layer_rope_scaled(layer), long_factors);
}

double layer_rope_attention_factor(const Config& config, int64_t layer) {
  const bool scaled = layer < 0 ? config.rope_scaling.type != RopeScalingType::None : config.layer_rope_scaled(layer);
  return config.rope_scaling.type == RopeScalingType::LongRope && scaled
             ? config.rope_scaling.attention_factor
             : 1.0;
}

bool rope_long_factors_apply(const Config& config, int64_t max_position) {
  return config.rope_scaling.type == RopeScalingType::LongRope &&
         max_position + 1 > config.rope_scaling.original_max_position;
}

}  // namespace slmopt
