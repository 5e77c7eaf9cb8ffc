// RoPE inverse frequencies of a Config: theta^(−2i/rotary_dims) for i < rotary_dims/2, adjusted by rope_scaling.
// Shared by exec/ (the forward pass tabulates rotations from them) and the writers that must tabulate or describe
// rotations (the ONNX exporter's cos/sin caches), so every consumer rotates alike.
//
// Scaling rules (Hugging Face's _compute_*_parameters in modeling_rope_utils.py):
// - Linear: inv_freq / factor.
// - Llama3: wavelengths above original_max_position / low_freq_factor are divided by factor, those below
//   original_max_position / high_freq_factor kept, the band between interpolated.
// - LongRope (Phi-3 "longrope"/"su"): inv_freq = 1 / (ext_factor[i] · theta^(2i/rotary_dims)), ext_factor the
//   short factors or the long ones; cos and sin are multiplied by attention_factor (see layer_rope_attention_factor).
//   Which set applies follows Hugging Face's Phi3 code (longrope_frequency_update): a forward call whose largest
//   position p has p + 1 > original_max_position uses the long factors for every position of that call, any
//   other call the short ones (rope_long_factors_apply). llama.cpp decides by its context size instead, so the
//   two agree whenever sequences stay within original_max_position.
// Gemma-3's local layers use rope_local_theta and no scaling (Config::layer_rope_theta / layer_rope_scaled).
#pragma once

#include <cstdint>
#include <vector>

#include "slmopt/ir/config.h"

namespace slmopt {

// The global layers' frequencies (rope_theta, rope_scaling; LongRope: the short factors).
std::vector<double> config_rope_inverse_frequencies(const Config& config);

// Layer `layer`'s frequencies: its base and, where scaling applies to it, rope_scaling (LongRope: the long factors
// when long_factors, else the short ones). layer < 0: the global layers.
std::vector<double> layer_rope_inverse_frequencies(const Config& config, int64_t layer, bool long_factors = false);

// LongRope's magnitude correction of cos/sin on layers the scaling applies to; 1 everywhere else.
double layer_rope_attention_factor(const Config& config, int64_t layer);

// Whether a forward call whose largest position is max_position uses LongRope's long factors (see above).
bool rope_long_factors_apply(const Config& config, int64_t max_position);

}  // namespace slmopt
