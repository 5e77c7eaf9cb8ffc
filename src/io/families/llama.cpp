// LlamaForCausalLM (also Llama-3.2, SmolLM, SmolLM2): RMSNorm, RoPE in rotate_half layout, grouped-query
// attention, SiLU-gated MLP; attention_bias adds q/k/v/o biases and mlp_bias the MLP biases. Mistral and Qwen2
// (mistral.cpp, qwen2.cpp) share its block and tensor names (hf_llama_*_names in hf_decoder_keys.cpp).
//
// llama.cpp: "llama" (src/models/llama.cpp) rotates interleaved pairs, so Q/K rows are regrouped; it takes
// optional q/k/v/o and MLP biases and Llama-3 scaling as rope_freqs, and has no sliding window. "deci" (deci.cpp)
// is the same graph sizing every layer from the per-layer arrays: it hosts any llama-shaped family whose layers
// differ in head, KV-head or FFN counts (gguf_arch::architecture_for).
#include "family.h"

namespace slmopt {
namespace {

void read_llama(const HfConfigJson& j, Config& c) {
  hf_require_activation(j, "hidden_act", {"silu"});
  hf_read_dimensions(j, c, {.max_position = 2048, .norm_eps = 1e-6});
  hf_read_rope(j, c, 10000.0);
  hf_read_attention_bias(j, c);
  c.mlp_bias = j.boolean_or("mlp_bias", false);
}

void write_llama(const Config& c, nlohmann::ordered_json& out) {
  hf_write_dimensions(c, out);
  hf_write_rope(c, out);
  out["attention_bias"] = c.attention_bias;
  out["mlp_bias"] = c.mlp_bias;
}

}  // namespace

const FamilyDefinition& family_llama() {
  static const FamilyDefinition f = {
      .name = "llama",
      .architectures = {"LlamaForCausalLM"},
      .model_type = "llama",
      .read_config = read_llama,
      .write_config = write_llama,
      .naming = hf_llama_naming,
      .is_buffer = hf_is_rotary_buffer,
      .gguf_architecture = "llama",
      .gguf_architectures = {{.gguf_name = "llama", .interleaved_rope = true, .qkv_bias = true, .out_bias = true,
                              .mlp_bias = true, .rope_freqs = true},
                             {.gguf_name = "deci", .interleaved_rope = true, .qkv_bias = true, .out_bias = true,
                              .mlp_bias = true, .per_layer_widths = true, .rope_freqs = true}},
      .genai_model_type = "llama",
  };
  return f;
}

}  // namespace slmopt
