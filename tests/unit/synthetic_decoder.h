// Random models of any decoder description, built in memory from the tensor list the description implies
// (ir/decoder_tensors.h), for the forward-pass variant tests. Values keep activations O(1): linear weights
// uniform in ±1.5/sqrt(fan_in), norm weights 1 ± 0.2 (± 0.2 around 0 on unit-offset models, whose multiplier is
// 1 + w), biases ±0.3, token embeddings ±1, learned positions ±0.5.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "slmopt/ir/decoder_tensors.h"
#include "slmopt/ir/model.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt::testing {

inline Model make_random_decoder(const Config& config, uint32_t seed, DType dtype = DType::F32) {
  std::mt19937 rng(seed);
  auto uniform = [&](double lo, double hi) {
    return static_cast<float>(lo + (hi - lo) * static_cast<double>(rng() >> 8) / static_cast<double>(1u << 24));
  };
  Model model;
  model.config = config;
  model.source_format = "synthetic";
  auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  for (const ExpectedTensor& t : decoder_tensors(config)) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    double lo = -1, hi = 1;
    if (t.name == names::kPositionEmbedding) {
      lo = -0.5, hi = 0.5;
    } else if (t.shape.size() == 2 && t.name != names::kEmbedTokens) {
      hi = 1.5 / std::sqrt(static_cast<double>(t.shape[1]));
      lo = -hi;
    } else if (t.shape.size() == 1 && ends_with(t.name, ".bias")) {
      lo = -0.3, hi = 0.3;
    } else if (t.shape.size() == 1) {  // a norm weight
      const double centre = config.norm_unit_offset ? 0.0 : 1.0;
      lo = centre - 0.2, hi = centre + 0.2;
    }
    std::vector<float> values(static_cast<size_t>(n));
    for (float& v : values) v = uniform(lo, hi);
    model.set(Tensor::from_f32_as(t.name, t.shape, values, dtype));
  }
  model.validate();
  return model;
}

}  // namespace slmopt::testing
