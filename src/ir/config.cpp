#include "slmopt/ir/config.h"

#include "slmopt/core/error.h"

namespace slmopt {

const char* family_name(Family family) {
  switch (family) {
    case Family::Llama: return "llama";
    case Family::Qwen2: return "qwen2";
    case Family::Mistral: return "mistral";
    case Family::Gpt2: return "gpt2";
  }
  return "?";
}

namespace {
int64_t per_layer(const std::vector<int64_t>& values, int64_t layer, int64_t uniform) {
  return values.empty() ? uniform : values.at(static_cast<size_t>(layer));
}
}  // namespace

int64_t Config::heads(int64_t layer) const { return per_layer(layer_num_heads, layer, num_heads); }
int64_t Config::kv_heads(int64_t layer) const { return per_layer(layer_num_kv_heads, layer, num_kv_heads); }
int64_t Config::ffn(int64_t layer) const { return per_layer(layer_intermediate_size, layer, intermediate_size); }

bool Config::uniform_layers() const {
  for (int64_t l = 0; l < num_layers; ++l)
    if (heads(l) != num_heads || kv_heads(l) != num_kv_heads || ffn(l) != intermediate_size) return false;
  return true;
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
  if (!(norm_eps > 0 && norm_eps < 1)) throw_error(ErrorKind::BadInput, "{}: norm epsilon {} is out of range", source, norm_eps);
  if (family != Family::Gpt2) {
    if (head_dim % 2 != 0) throw_error(ErrorKind::BadInput, "{}: head_dim {} must be even for RoPE", source, head_dim);
    if (!(rope_theta > 0)) throw_error(ErrorKind::BadInput, "{}: rope_theta must be positive", source);
  }
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
    if (h % kv != 0)
      throw_error(ErrorKind::BadInput, "{}: layer {}: {} attention heads are not a multiple of {} KV heads", source,
                  l, h, kv);
  }
}

}  // namespace slmopt
