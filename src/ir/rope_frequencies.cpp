// See rope_frequencies.h; the scaling rules follow Hugging Face's _compute_linear_scaling_rope_parameters and
// _compute_llama3_parameters.
#include "slmopt/ir/rope_frequencies.h"

#include <cmath>
#include <numbers>

namespace slmopt {

std::vector<double> config_rope_inverse_frequencies(const Config& config) {
  const int64_t half = config.head_dim / 2;
  const RopeScaling& s = config.rope_scaling;
  std::vector<double> inv_freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    double f = std::pow(config.rope_theta, -static_cast<double>(2 * i) / static_cast<double>(config.head_dim));
    if (s.type == RopeScalingType::Linear) {
      f /= s.factor;
    } else if (s.type == RopeScalingType::Llama3) {
      const double old_context = static_cast<double>(s.original_max_position);
      const double wavelength = 2 * std::numbers::pi / f;
      if (wavelength > old_context / s.low_freq_factor) {
        f /= s.factor;
      } else if (wavelength >= old_context / s.high_freq_factor) {
        const double smooth = (old_context / wavelength - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = (1 - smooth) * f / s.factor + smooth * f;
      }
    }
    inv_freq[static_cast<size_t>(i)] = f;
  }
  return inv_freq;
}

}  // namespace slmopt
