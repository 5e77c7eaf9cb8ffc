// GraniteForCausalLM (Granite 3.x dense): a Llama block with four multipliers: embeddings × embedding_multiplier,
// each sublayer's output × residual_multiplier before it is added, attention scores × attention_multiplier (in
// place of 1/sqrt(head_dim); transformers' default is 1.0), logits ÷ logits_scaling. Defaults are 1.0 each.
#include <cmath>

#include "family.h"

namespace slmopt {
namespace {

void read_granite(const HfConfigJson& j, Config& c) {
  hf_require_activation(j, "hidden_act", {"silu"});
  hf_read_dimensions(j, c, {.max_position = 2048, .norm_eps = 1e-6});
  hf_read_rope(j, c, 10000.0);
  hf_read_attention_bias(j, c);
  c.mlp_bias = j.boolean_or("mlp_bias", false);
  c.embedding_scale = j.positive_number_or("embedding_multiplier", 1.0);
  c.residual_scale = j.positive_number_or("residual_multiplier", 1.0);
  c.attn_scale = j.positive_number_or("attention_multiplier", 1.0);
  c.logit_scale = 1.0 / j.positive_number_or("logits_scaling", 1.0);
}

void write_granite(const Config& c, nlohmann::ordered_json& out) {
  hf_write_dimensions(c, out);
  hf_write_rope(c, out);
  out["attention_bias"] = c.attention_bias;
  out["mlp_bias"] = c.mlp_bias;
  out["embedding_multiplier"] = c.embedding_scale;
  out["residual_multiplier"] = c.residual_scale;
  out["attention_multiplier"] = c.attention_scale();
  double scaling = 1.0 / c.logit_scale;  // released values are integers (8, 16): prefer one that reads back exactly
  if (1.0 / std::round(scaling) == c.logit_scale) scaling = std::round(scaling);
  out["logits_scaling"] = scaling;
}

}  // namespace

const FamilyDefinition& family_granite() {
  static const FamilyDefinition f = {
      .name = "granite",
      .architectures = {"GraniteForCausalLM"},
      .model_type = "granite",
      .read_config = read_granite,
      .write_config = write_granite,
      .naming = hf_llama_naming,
      .is_buffer = hf_is_rotary_buffer,
      .gguf_architecture = "granite",
      // llama.cpp granite.cpp: the llama block with normal RoPE and the four multipliers (logit_scale required).
      .gguf_architectures = {{.gguf_name = "granite", .interleaved_rope = true, .qkv_bias = true, .out_bias = true,
                              .mlp_bias = true, .rope_freqs = true, .multipliers = true,
                              .attn_scale = gguf_arch::AttnScale::Key}},
      .genai_model_type = "granite",
  };
  return f;
}

}  // namespace slmopt
