// Qwen3ForCausalLM: Qwen2's block with a per-head RMSNorm on q and k before RoPE (self_attn.q_norm / k_norm,
// [head_dim] each), head_dim 128 when config.json omits it, and attention_bias covering q/k/v and o_proj (Qwen2
// always has q/k/v biases; Qwen3 none unless asked).
#include "hf_family.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt {
namespace {

void read_qwen3(const HfConfigJson& j, Config& c) {
  c.family = Family::Qwen3;
  hf_require_activation(j, "hidden_act", {"silu"});
  hf_read_dimensions(j, c, {.max_position = 32768, .norm_eps = 1e-6, .head_dim = 128});
  hf_read_rope(j, c, 10000.0);
  hf_read_attention_bias(j, c);
  hf_read_qwen_sliding(j, c);
  c.qk_norm = QkNormKind::PerHead;
}

void write_qwen3(const Config& c, nlohmann::ordered_json& out) {
  hf_write_dimensions(c, out);
  hf_write_rope(c, out);
  out["attention_bias"] = c.attention_bias;
  hf_write_qwen_sliding(c, out);
}

HfTensorNaming build_naming() {
  HfTensorNaming n = {hf_llama_global_names(), hf_llama_layer_names()};
  for (const char* s : {"self_attn.q_norm.weight", "self_attn.k_norm.weight"}) n.layer.push_back({s, {s}});
  return n;
}
const HfTensorNaming& naming() {
  static const HfTensorNaming n = build_naming();
  return n;
}

}  // namespace

extern const HfFamily kHfQwen3Family = {Family::Qwen3, {"Qwen3ForCausalLM"}, "qwen3", read_qwen3, write_qwen3,
                                        naming, hf_is_rotary_buffer};

}  // namespace slmopt
