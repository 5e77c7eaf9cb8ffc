#include "slmopt/ir/tensor_names.h"

namespace slmopt::names {

std::string layer_prefix(int64_t layer) { return "model.layers." + std::to_string(layer) + "."; }
std::string attn_norm(int64_t l) { return layer_prefix(l) + "input_layernorm.weight"; }
std::string ffn_norm(int64_t l) { return layer_prefix(l) + "post_attention_layernorm.weight"; }
std::string q_proj(int64_t l) { return layer_prefix(l) + "self_attn.q_proj.weight"; }
std::string k_proj(int64_t l) { return layer_prefix(l) + "self_attn.k_proj.weight"; }
std::string v_proj(int64_t l) { return layer_prefix(l) + "self_attn.v_proj.weight"; }
std::string o_proj(int64_t l) { return layer_prefix(l) + "self_attn.o_proj.weight"; }
std::string q_bias(int64_t l) { return layer_prefix(l) + "self_attn.q_proj.bias"; }
std::string k_bias(int64_t l) { return layer_prefix(l) + "self_attn.k_proj.bias"; }
std::string v_bias(int64_t l) { return layer_prefix(l) + "self_attn.v_proj.bias"; }
std::string o_bias(int64_t l) { return layer_prefix(l) + "self_attn.o_proj.bias"; }
std::string gate_proj(int64_t l) { return layer_prefix(l) + "mlp.gate_proj.weight"; }
std::string up_proj(int64_t l) { return layer_prefix(l) + "mlp.up_proj.weight"; }
std::string down_proj(int64_t l) { return layer_prefix(l) + "mlp.down_proj.weight"; }
std::string gate_bias(int64_t l) { return layer_prefix(l) + "mlp.gate_proj.bias"; }
std::string up_bias(int64_t l) { return layer_prefix(l) + "mlp.up_proj.bias"; }
std::string down_bias(int64_t l) { return layer_prefix(l) + "mlp.down_proj.bias"; }
std::string attn_norm_bias(int64_t l) { return layer_prefix(l) + "input_layernorm.bias"; }
std::string ffn_norm_bias(int64_t l) { return layer_prefix(l) + "post_attention_layernorm.bias"; }
std::string attn_post_norm(int64_t l) { return layer_prefix(l) + "attn_post_norm.weight"; }
std::string ffn_post_norm(int64_t l) { return layer_prefix(l) + "ffn_post_norm.weight"; }
std::string q_norm(int64_t l) { return layer_prefix(l) + "self_attn.q_norm.weight"; }
std::string k_norm(int64_t l) { return layer_prefix(l) + "self_attn.k_norm.weight"; }

std::string gpt2::layer_prefix(int64_t l) { return "transformer.h." + std::to_string(l) + "."; }

bool is_linear_weight(const std::string& name) {
  auto ends_with = [&](const std::string& suffix) {
    return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return ends_with("_proj.weight") || ends_with(".c_attn.weight") || ends_with(".c_fc.weight") || name == kLmHead;
}

}  // namespace slmopt::names
