// Olmo2ForCausalLM: norms only after each sublayer (x += norm(f(x)), no input norm), an RMSNorm over the whole q
// and k projections (q_norm [heads·head_dim], k_norm [kv_heads·head_dim]) before RoPE, SwiGLU MLP, untied head.
// OLMo's post_attention_layernorm is on the attention output (canonical attn_post_norm) and
// post_feedforward_layernorm on the MLP output (canonical ffn_post_norm).
#include "family.h"

namespace slmopt {
namespace {

void read_olmo2(const HfConfigJson& j, Config& c) {
  hf_require_activation(j, "hidden_act", {"silu"});
  hf_read_dimensions(j, c, {.max_position = 2048, .norm_eps = 1e-5});
  hf_read_rope(j, c, 10000.0);
  hf_read_attention_bias(j, c);
  c.norm_placement = NormPlacement::Post;
  c.qk_norm = QkNormKind::Whole;
}

void write_olmo2(const Config& c, nlohmann::ordered_json& out) {
  hf_write_dimensions(c, out);
  hf_write_rope(c, out);
  out["attention_bias"] = c.attention_bias;
}

HfTensorNaming build_naming() {
  HfTensorNaming n = {hf_llama_global_names(),
                      {{"post_attention_layernorm.weight", {"attn_post_norm.weight"}},
                       {"post_feedforward_layernorm.weight", {"ffn_post_norm.weight"}},
                       {"self_attn.q_norm.weight", {"self_attn.q_norm.weight"}},
                       {"self_attn.k_norm.weight", {"self_attn.k_norm.weight"}}}};
  for (HfTensorName& row : hf_llama_projection_names()) n.layer.push_back(std::move(row));
  return n;
}
const HfTensorNaming& naming() {
  static const HfTensorNaming n = build_naming();
  return n;
}

}  // namespace

const FamilyDefinition& family_olmo2() {
  // onnxruntime-genai has no "olmo2": its model builder writes "olmo" for the class.
  static const FamilyDefinition f = {
      .name = "olmo2",
      .architectures = {"Olmo2ForCausalLM"},
      .model_type = "olmo2",
      .read_config = read_olmo2,
      .write_config = write_olmo2,
      .naming = naming,
      .is_buffer = hf_is_rotary_buffer,
      .gguf_architecture = "olmo2",
      // llama.cpp olmo2.cpp: norms after attention and MLP only, q/k RMSNorm over the whole projection, a required
      // output head, attn_output {hidden, hidden}.
      .gguf_architectures = {{.gguf_name = "olmo2", .norm_placement = NormPlacement::Post, .qk_norm = QkNormKind::Whole,
                              .head = gguf_arch::Head::Required, .q_width_is_hidden = true,
                              .swa = gguf_arch::Swa::Pattern, .swa_default_pattern = 4, .swa_rope_base = true}},
      .genai_model_type = "olmo",
  };
  return f;
}

}  // namespace slmopt
