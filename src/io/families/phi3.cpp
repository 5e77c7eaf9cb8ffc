// Phi3ForCausalLM (Phi-3-mini, Phi-3.5-mini, Phi-4-mini): a Llama block whose projections are stored fused:
// self_attn.qkv_proj holds the q, k and v rows (in that order) and mlp.gate_up_proj the gate then up rows. They
// are split into canonical views at load (no copy) and fused again on write. LongRoPE ("longrope", first called
// "su") with original_max_position_embeddings at the top level (4096 when omitted), partial_rotary_factor
// (Phi-4-mini 0.75), and a window on every layer when sliding_window is set (Phi-3-mini-4k: 2047). The Phi-4-mini
// keys attention_bias / mlp_bias / lm_head_bias are ignored by transformers' Phi3 classes; slmopt refuses them
// when true rather than drop the biases.
#include "family.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt {
namespace {

void read_phi3(const HfConfigJson& j, Config& c) {
  hf_require_activation(j, "hidden_act", {"silu"});
  hf_read_dimensions(j, c, {.max_position = 4096, .norm_eps = 1e-5});
  hf_read_partial_rotary(j, c, 1.0);
  hf_read_rope(j, c, 10000.0, /*longrope_original_default=*/4096);
  for (const char* bias : {"attention_bias", "mlp_bias", "lm_head_bias"})
    if (j.boolean_or(bias, false)) j.unsupported(bias, "= true is not supported (Phi3ForCausalLM has no biases)");
  hf_set_sliding(j, c, j.positive_integer_or("sliding_window", 0),
                 std::vector<uint8_t>(static_cast<size_t>(c.num_layers), 1));
}

void write_phi3(const Config& c, nlohmann::ordered_json& out) {
  hf_write_dimensions(c, out);
  hf_write_partial_rotary(c, out);
  hf_write_rope(c, out);
  if (!out.contains("original_max_position_embeddings")) out["original_max_position_embeddings"] = c.max_position;
  out["sliding_window"] = c.sliding_window > 0 ? nlohmann::ordered_json(c.sliding_window) : nullptr;
}

const HfTensorNaming& naming() {
  static const HfTensorNaming n = {
    hf_llama_global_names(),
    {{"input_layernorm.weight", {"input_layernorm.weight"}},
     {"post_attention_layernorm.weight", {"post_attention_layernorm.weight"}},
     {"self_attn.qkv_proj.weight", {"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight"}},
     {"self_attn.o_proj.weight", {"self_attn.o_proj.weight"}},
     {"mlp.gate_up_proj.weight", {"mlp.gate_proj.weight", "mlp.up_proj.weight"}},
     {"mlp.down_proj.weight", {"mlp.down_proj.weight"}}}};
  return n;
}

}  // namespace

const FamilyDefinition& family_phi3() {
  static const FamilyDefinition f = {
      .name = "phi3",
      .architectures = {"Phi3ForCausalLM"},
      .model_type = "phi3",
      .read_config = read_phi3,
      .write_config = write_phi3,
      .naming = naming,
      .is_buffer = hf_is_rotary_buffer,
      .gguf_architecture = "phi3",
      // llama.cpp phi3.cpp: ffn_up {hidden, 2·ffn} = [gate; up], partial NEOX RoPE, LongRoPE factor tensors; its
      // sliding window is switched off by llama.cpp (the key is kept for the round trip).
      .gguf_architectures = {{.gguf_name = "phi3", .partial_rotary = true, .fused_gate_up = true,
                              .q_width_is_hidden = true, .longrope = true}},
      .genai_model_type = "phi3",
  };
  return f;
}

}  // namespace slmopt
