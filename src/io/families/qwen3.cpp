// Qwen3ForCausalLM: Qwen2's block with a per-head RMSNorm on q and k before RoPE (self_attn.q_norm / k_norm,
// [head_dim] each), head_dim 128 when config.json omits it, and attention_bias covering q/k/v and o_proj (Qwen2
// always has q/k/v biases; Qwen3 none unless asked).
#include "family.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt {
namespace {

void read_qwen3(const HfConfigJson& j, Config& c) {
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

const FamilyDefinition& family_qwen3() {
  static const FamilyDefinition f = {
      .name = "qwen3",
      .architectures = {"Qwen3ForCausalLM"},
      .model_type = "qwen3",
      .read_config = read_qwen3,
      .write_config = write_qwen3,
      .naming = naming,
      .is_buffer = hf_is_rotary_buffer,
      .gguf_architecture = "qwen3",
      // llama.cpp qwen3.cpp: per-head q/k RMSNorm (attn_q_norm/attn_k_norm {head_dim}) before RoPE.
      .gguf_architectures = {{.gguf_name = "qwen3", .qk_norm = QkNormKind::PerHead, .qkv_bias = true}},
      .genai_model_type = "qwen3",
  };
  return f;
}

}  // namespace slmopt
