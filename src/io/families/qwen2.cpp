// Qwen2ForCausalLM: the Llama block and tensor names (llama.cpp) with q/k/v biases always (and no other bias),
// and local layers from max_window_layers on when use_sliding_window.
//
// llama.cpp "qwen2" (src/models/qwen2.cpp): NEOX RoPE, optional q/k/v biases and output bias, attn_output
// {hidden, hidden}.
#include "family.h"

namespace slmopt {
namespace {

void read_qwen2(const HfConfigJson& j, Config& c) {
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

}  // namespace

const FamilyDefinition& family_qwen2() {
  static const FamilyDefinition f = {
      .name = "qwen2",
      .architectures = {"Qwen2ForCausalLM"},
      .model_type = "qwen2",
      .read_config = read_qwen2,
      .write_config = write_qwen2,
      .naming = hf_llama_naming,
      .is_buffer = hf_is_rotary_buffer,
      .gguf_architecture = "qwen2",
      .gguf_architectures = {{.gguf_name = "qwen2", .qkv_bias = true, .head_bias = true, .q_width_is_hidden = true}},
      .genai_model_type = "qwen2",
  };
  return f;
}

}  // namespace slmopt
