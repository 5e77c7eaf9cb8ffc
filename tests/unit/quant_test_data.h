// Deterministic test inputs for the block-format and quantizer tests: Gaussian rows with outliers (the shape of
// real weight rows, where a few large values set the block scales) and a realistic non-uniform importance.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "slmopt/ir/dtype.h"

namespace slmopt::testing {

inline const std::vector<DType>& all_block_types() {
  static const std::vector<DType> types = {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                                           DType::Q8_0, DType::Q2_K, DType::Q3_K, DType::Q4_K,
                                           DType::Q5_K, DType::Q6_K, DType::IQ4_NL};
  return types;
}

// N(0, sigma²) with ~1% outliers at 4-8 sigma and, every 7th block of 32, a shifted mean (so that the types
// with a stored minimum see asymmetric blocks too).
inline std::vector<float> gaussian_with_outliers(size_t n, uint32_t seed, float sigma = 0.02f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) {
    float v = normal(rng);
    if (unit(rng) < 0.01f) v = (unit(rng) < 0.5f ? -1.0f : 1.0f) * sigma * (4.0f + 4.0f * unit(rng));
    if ((i / 32) % 7 == 3) v += 1.5f * sigma;
    x[i] = v;
  }
  return x;
}

// A per-column importance like the mean squared activations of a linear layer's input: log-normal spread over
// columns with a few dominant channels.
inline std::vector<float> activation_importance(size_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  std::vector<float> imp(cols);
  for (size_t i = 0; i < cols; ++i) {
    imp[i] = std::exp(1.2f * normal(rng));
    if (unit(rng) < 0.02f) imp[i] *= 50.0f;
  }
  return imp;
}

}  // namespace slmopt::testing
