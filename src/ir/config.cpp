#include "slmopt/ir/config.h"
#include "slmopt/ir/config_limits.h"

#include <cmath>

#include "slmopt/core/error.h"

namespace slmopt {

namespace {
int64_t per_layer(const std::vector<int64_t>& values, int64_t layer, int64_t uniform) {
  return values.empty() ? uniform : values.at(static_cast<size_t>(layer));
}
}  // namespace

int64_t Config::heads(int64_t layer) const { return per_layer(layer_num_heads, layer, num_heads); }
int64_t Config::kv_heads(int64_t layer) const { return per_layer(layer_num_kv_heads, layer, num_kv_heads); }
int64_t Config::ffn(int64_t layer) const { return per_layer(layer_intermediate_size, layer, intermediate_size); }

bool Config::layer_is_sliding(int64_t layer) const {
  if (sliding_window <= 0) return false;
  return layer_sliding.empty() || layer_sliding.at(static_cast<size_t>(layer)) != 0;
}

bool Config::layer_uses_rope(int64_t layer) const {
  if (position_kind != PositionKind::Rope) return false;
  return layer_no_rope.empty() || layer_no_rope.at(static_cast<size_t>(layer)) == 0;
}

// Gemma-3's local layers use their own base and no scaling; every other model has one RoPE for all layers.
double Config::layer_rope_theta(int64_t layer) const {
  return rope_local_theta > 0 && layer_is_sliding(layer) ? rope_local_theta : rope_theta;
}

bool Config::layer_rope_scaled(int64_t layer) const {
  return rope_scaling.type != RopeScalingType::None && !(rope_local_theta > 0 && layer_is_sliding(layer));
}

double Config::attention_scale() const {
  return attn_scale > 0 ? attn_scale : 1.0 / std::sqrt(static_cast<double>(head_dim));
}

bool Config::uniform_layers() const {
  for (int64_t l = 0; l < num_layers; ++l)
    if (heads(l) != num_heads || kv_heads(l) != num_kv_heads || ffn(l) != intermediate_size) return false;
  return true;
}

void check_config_sizes(const Config& c, const std::string& source) {
  auto at_most = [&](const char* field, int64_t v, int64_t limit) {
    if (v > limit) throw_error(ErrorKind::BadInput, "{}: {} {} is beyond the supported maximum {}", source, field, v, limit);
  };
  at_most("hidden_size", c.hidden_size, kMaxHiddenSize);
  at_most("intermediate_size", c.intermediate_size, kMaxFfnSize);
  at_most("num_hidden_layers", c.num_layers, kMaxLayers);
  at_most("num_attention_heads", c.num_heads, kMaxHeads);
  at_most("num_key_value_heads", c.num_kv_heads, kMaxHeads);
  at_most("head_dim", c.head_dim, kMaxHeadDim);
  at_most("vocab_size", c.vocab_size, kMaxVocabSize);
  at_most("max_position_embeddings", c.max_position, kMaxPositions);
}

void Config::validate(const std::string& source) const {
  auto positive = [&](const char* field, int64_t v) {
    if (v <= 0) throw_error(ErrorKind::BadInput, "{}: {} must be positive, got {}", source, field, v);
  };
  positive("hidden_size", hidden_size);
  positive("intermediate_size", intermediate_size);
  positive("num_hidden_layers", num_layers);
  positive("num_attention_heads", num_heads);
  positive("num_key_value_heads", num_kv_heads);
  positive("head_dim", head_dim);
  positive("vocab_size", vocab_size);
  positive("max_position_embeddings", max_position);
  check_config_sizes(*this, source);
  if (!(norm_eps > 0 && norm_eps < 1)) throw_error(ErrorKind::BadInput, "{}: norm epsilon {} is out of range", source, norm_eps);
  if (position_kind == PositionKind::Rope) {
    if (rotary_dims() % 2 != 0 || rotary_dims() > head_dim || rotary_dim < 0)
      throw_error(ErrorKind::BadInput, "{}: rotary dimension {} must be even and at most head_dim {}", source,
                  rotary_dims(), head_dim);
    if (!(rope_theta > 0)) throw_error(ErrorKind::BadInput, "{}: rope_theta must be positive", source);
    if (rope_local_theta < 0) throw_error(ErrorKind::BadInput, "{}: the local RoPE base must be positive", source);
  }
  if (rope_scaling.type == RopeScalingType::LongRope) {
    const size_t half = static_cast<size_t>(rotary_dims() / 2);
    if (rope_scaling.short_factor.size() != half || rope_scaling.long_factor.size() != half)
      throw_error(ErrorKind::BadInput, "{}: rope_scaling short_factor/long_factor need {} entries (rotary dims / 2), "
                  "got {} and {}", source, half, rope_scaling.short_factor.size(), rope_scaling.long_factor.size());
  }
  auto finite_nonneg = [&](const char* field, double v) {
    if (!std::isfinite(v) || v < 0) throw_error(ErrorKind::BadInput, "{}: {} must be a finite non-negative number, "
                                                "got {}", source, field, v);
  };
  finite_nonneg("attention scale", attn_scale);
  finite_nonneg("attention soft-cap", attn_softcap);
  finite_nonneg("final logit soft-cap", final_logit_softcap);
  for (const auto& [field, v] : {std::pair{"embedding scale", embedding_scale}, {"residual scale", residual_scale},
                                 {"logit scale", logit_scale}})
    if (!std::isfinite(v) || v <= 0) throw_error(ErrorKind::BadInput, "{}: {} must be positive, got {}", source, field, v);
  if (norm_bias && norm_kind != NormKind::LayerNorm)
    throw_error(ErrorKind::BadInput, "{}: norm biases exist only for LayerNorm models", source);
  if (sliding_window < 0) throw_error(ErrorKind::BadInput, "{}: sliding_window must not be negative", source);
  auto check_flags = [&](const char* field, const std::vector<uint8_t>& v) {
    if (!v.empty() && static_cast<int64_t>(v.size()) != num_layers)
      throw_error(ErrorKind::BadInput, "{}: {} has {} entries for {} layers", source, field, v.size(), num_layers);
  };
  check_flags("per-layer sliding-window flags", layer_sliding);
  check_flags("per-layer NoPE flags", layer_no_rope);
  if (rope_scaling.type != RopeScalingType::None && !(rope_scaling.factor > 0))
    throw_error(ErrorKind::BadInput, "{}: rope_scaling.factor must be positive", source);
  auto check_layers = [&](const char* field, const std::vector<int64_t>& v) {
    if (!v.empty() && static_cast<int64_t>(v.size()) != num_layers)
      throw_error(ErrorKind::BadInput, "{}: {} has {} entries for {} layers", source, field, v.size(), num_layers);
  };
  check_layers("per-layer head counts", layer_num_heads);
  check_layers("per-layer KV head counts", layer_num_kv_heads);
  check_layers("per-layer FFN sizes", layer_intermediate_size);
  for (int64_t l = 0; l < num_layers; ++l) {
    const int64_t h = heads(l), kv = kv_heads(l);
    if (h <= 0 || kv <= 0 || ffn(l) <= 0)
      throw_error(ErrorKind::BadInput, "{}: layer {} has no heads or no FFN channels", source, l);
    if (h > kMaxHeads || kv > kMaxHeads || ffn(l) > kMaxFfnSize)
      throw_error(ErrorKind::BadInput, "{}: layer {} has {} heads, {} KV heads and {} FFN channels, beyond the supported "
                  "maxima {} and {}", source, l, h, kv, ffn(l), kMaxHeads, kMaxFfnSize);
    if (h % kv != 0)
      throw_error(ErrorKind::BadInput, "{}: layer {}: {} attention heads are not a multiple of {} KV heads", source,
                  l, h, kv);
  }
}

}  // namespace slmopt
