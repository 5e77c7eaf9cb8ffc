// Small numeric helpers shared by the encoders in src/quant (private to the quant layer).
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "slmopt/core/half.h"

namespace slmopt::quant_detail {

// Round to nearest, ties to even, by ggml's trick of adding 1.5*2^23 (ggml's nearest_int). Exact for
// |v| <= 2^22; outside that range the result is meaningless but defined, and every caller clamps it.
inline int nearest_int(float v) {
  const float shifted = v + 12582912.f;
  const int32_t bits = std::bit_cast<int32_t>(shifted);
  return (bits & 0x007fffff) - 0x00400000;
}

inline int clamp_int(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// ggml's GROUP_MAX_EPS: below this absolute maximum a group counts as all zero.
inline constexpr float kGroupMaxEps = 1e-15f;

// The element of largest magnitude, with its sign (the first one on ties; 0 for an all-zero input). ggml's
// encoders scale by this signed maximum so that it lands exactly on the outermost negative level.
inline float signed_absmax(const float* x, int n) {
  float amax = 0, max = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  return max;
}

// The value a float scale has once stored as f16.
inline float round_to_f16(float v) { return f16_to_f32(f32_to_f16(v)); }

// Element weight of the objective: the importance of the column, or 1 without an importance vector.
inline float weight_at(const float* importance, int64_t i) { return importance ? importance[i] : 1.0f; }

// Σ w_i (x_i - y_i)², accumulated in double so that candidate comparisons are not decided by rounding.
inline double weighted_sq_error(const float* x, const float* y, const float* w, int n) {
  double err = 0;
  for (int i = 0; i < n; ++i) {
    const double diff = static_cast<double>(x[i]) - static_cast<double>(y[i]);
    err += (w ? static_cast<double>(w[i]) : 1.0) * diff * diff;
  }
  return err;
}

}  // namespace slmopt::quant_detail
