// Architecture family and hyper-parameters of a decoder-only transformer, validated once at load time so that
// passes and the forward pass can trust them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace slmopt {

enum class Family {
  Llama,    // LlamaForCausalLM, MistralForCausalLM (same graph), and Qwen2 (adds q/k/v biases)
  Qwen2,
  Mistral,
  Gpt2,     // GPT2LMHeadModel: LayerNorm, learned positions, GELU, fused c_attn
};

const char* family_name(Family family);

enum class RopeScalingType { None, Linear, Llama3 };

struct RopeScaling {
  RopeScalingType type = RopeScalingType::None;
  double factor = 1.0;
  double low_freq_factor = 1.0;           // llama3
  double high_freq_factor = 4.0;          // llama3
  int64_t original_max_position = 8192;   // llama3
};

struct Config {
  Family family = Family::Llama;
  std::string architecture;  // the Hugging Face class name, e.g. "LlamaForCausalLM"
  std::string name;          // a human name for reports (folder name or general.name)

  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t vocab_size = 0;
  int64_t max_position = 0;

  double norm_eps = 1e-5;  // RMSNorm (llama) or LayerNorm (gpt2) epsilon
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v biases (Qwen2, or attention_bias=true)
  bool attention_out_bias = false;
  bool mlp_bias = false;

  // Structured pruning may leave layers with different widths. Empty means "same as the uniform value".
  std::vector<int64_t> layer_num_heads;
  std::vector<int64_t> layer_num_kv_heads;
  std::vector<int64_t> layer_intermediate_size;

  int64_t heads(int64_t layer) const;
  int64_t kv_heads(int64_t layer) const;
  int64_t ffn(int64_t layer) const;
  bool uniform_layers() const;

  // Throws Error(BadInput) naming the offending field (prefixed with `source`, e.g. the config.json path).
  void validate(const std::string& source) const;
};

}  // namespace slmopt
