// The Llama-shaped Hugging Face families: LlamaForCausalLM (also Llama-3.2, SmolLM, SmolLM2), MistralForCausalLM
// and Qwen2ForCausalLM share one block (RMSNorm, RoPE in rotate_half layout, grouped-query attention, SiLU-gated
// MLP) and one tensor naming; they differ in config.json defaults, biases and windows: Llama's attention_bias adds
// q/k/v/o biases and mlp_bias the MLP biases; Qwen2 always has q/k/v biases (and nothing else) and local layers
// from max_window_layers on when use_sliding_window; Mistral has no biases and a window on every layer
// (sliding_window, 4096 when the key is omitted, none when it is null).
#include "hf_family.h"

namespace slmopt {
namespace {

void read_llama(const HfConfigJson& j, Config& c) {
  c.family = Family::Llama;
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

void read_mistral(const HfConfigJson& j, Config& c) {
  c.family = Family::Mistral;
  hf_require_activation(j, "hidden_act", {"silu"});
  hf_read_dimensions(j, c, {.max_position = 4096 * 32, .norm_eps = 1e-6});
  hf_read_rope(j, c, 10000.0);
  const int64_t window = j.present("sliding_window") ? j.positive_integer_or("sliding_window", 0) : 4096;
  hf_set_sliding(j, c, window, std::vector<uint8_t>(static_cast<size_t>(c.num_layers), 1));
}

void write_mistral(const Config& c, nlohmann::ordered_json& out) {
  hf_write_dimensions(c, out);
  hf_write_rope(c, out);
  out["sliding_window"] = c.sliding_window > 0 ? nlohmann::ordered_json(c.sliding_window) : nullptr;
}

void read_qwen2(const HfConfigJson& j, Config& c) {
  c.family = Family::Qwen2;
  hf_require_activation(j, "hidden_act", {"silu"});
  hf_read_dimensions(j, c, {.max_position = 32768, .norm_eps = 1e-6});
  hf_read_rope(j, c, 10000.0);
  c.attention_bias = true;  // Qwen2Attention always has q/k/v biases and no o_proj bias
  hf_read_qwen_sliding(j, c);
}

void write_qwen2(const Config& c, nlohmann::ordered_json& out) {
  hf_write_dimensions(c, out);
  hf_write_rope(c, out);
  hf_write_qwen_sliding(c, out);
}

const HfTensorNaming& llama_naming() {
  static const HfTensorNaming naming = {hf_llama_global_names(), hf_llama_layer_names()};
  return naming;
}

}  // namespace

extern const HfFamily kHfLlamaFamily = {Family::Llama, {"LlamaForCausalLM"}, "llama", read_llama, write_llama,
                                        llama_naming, hf_is_rotary_buffer};
extern const HfFamily kHfMistralFamily = {Family::Mistral, {"MistralForCausalLM"}, "mistral", read_mistral,
                                          write_mistral, llama_naming, hf_is_rotary_buffer};
extern const HfFamily kHfQwen2Family = {Family::Qwen2, {"Qwen2ForCausalLM"}, "qwen2", read_qwen2, write_qwen2,
                                        llama_naming, hf_is_rotary_buffer};

}  // namespace slmopt
