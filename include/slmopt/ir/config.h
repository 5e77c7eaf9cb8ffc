// Architecture family and hyper-parameters of a decoder-only transformer, validated once at load time so that
// passes and the forward pass can trust them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace slmopt {

// Family is a *naming* tag only: it picks the family file that maps config.json keys and tensor names (Hugging
// Face, GGUF, ONNX) onto the decoder description below. Nothing that computes (forward pass, passes, writers'
// graph choices) may switch on it; they read the description fields of Config.

enum class RopeScalingType {
  None,
  Linear,    // positions divided by factor
  Llama3,    // per-frequency smoothing (low/high_freq_factor, original_max_position)
  LongRope,  // Phi-3 "longrope"/"su": per-frequency divisors (short_factor up to original_max_position, long
             // beyond) and a magnitude correction attention_factor on cos/sin
};

struct RopeScaling {
  RopeScalingType type = RopeScalingType::None;
  double factor = 1.0;
  double low_freq_factor = 1.0;           // llama3
  double high_freq_factor = 4.0;          // llama3
  int64_t original_max_position = 8192;   // llama3, LongRope
  std::vector<double> short_factor;       // LongRope: rotary_dim / 2 divisors each
  std::vector<double> long_factor;
  double attention_factor = 1.0;          // LongRope: cos/sin multiplier
};

enum class NormKind {
  RmsNorm,    // x / sqrt(mean(x²) + eps) · w
  LayerNorm,  // (x − mean) / sqrt(var + eps) · w (+ b when norm_bias)
};

// Where a block's norms sit (canonical tensor names in tensor_names.h):
enum class NormPlacement {
  Pre,       // x += f(norm(x)) — attn_norm before attention, ffn_norm before the MLP (Llama, Qwen, Phi, GPT-2)
  Sandwich,  // x += post_norm(f(pre_norm(x))) — all four norms (Gemma-2/3)
  Post,      // x += post_norm(f(x)) — attn_post_norm and ffn_post_norm only (OLMo-2)
};

enum class ResidualLayout {
  Sequential,  // x += attn(...); x += mlp(...)
  Parallel,    // x += attn(attn_norm(x)) + mlp(attn_norm(x)): one norm feeds both (Phi-2)
};

enum class MlpKind {
  SwiGlu,     // down(silu(gate(x)) · up(x))
  GeGluTanh,  // down(gelu_tanh(gate(x)) · up(x)) (Gemma)
  GeluTanh,   // down(gelu_tanh(up(x))), no gate (GPT-2 and Phi-2 "gelu_new")
};

enum class QkNormKind {
  None,
  PerHead,  // RMSNorm over each head's head_dim values, weights [head_dim], before RoPE (Qwen3, Gemma-3)
  Whole,    // RMSNorm over the whole q (k) projection, weights [heads·head_dim], before RoPE (OLMo-2)
};

enum class PositionKind {
  Rope,     // rotary, rotate_half layout on the first rotary_dim values of each head
  Learned,  // an absolute position table added to the embeddings (GPT-2)
};

// The decoder description: everything the forward pass, the writers' graphs and the passes need to know about a
// decoder-only transformer. Every family is an instance (the family files in io/ fill it from config.json or GGUF
// metadata). Defaults describe a plain Llama block. The canonical tensors it implies: decoder_tensors.h.
struct Config {
  // The model family: the name of the file that defines it (src/io/families/<name>.cpp: "llama", "gemma2", ...).
  // ir/ knows no family; everything family-specific is read from the description below.
  std::string family = "llama";
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

  // ---- block shape beyond Llama's defaults ----
  NormKind norm_kind = NormKind::RmsNorm;
  bool norm_bias = false;         // LayerNorm biases on every norm (GPT-2, Phi-2)
  bool norm_unit_offset = false;  // stored weights w scale by (1 + w) (Gemma, incl. its q/k norms); GGUF stores 1 + w
  NormPlacement norm_placement = NormPlacement::Pre;
  ResidualLayout residual_layout = ResidualLayout::Sequential;
  MlpKind mlp_kind = MlpKind::SwiGlu;  // mlp_bias then means gate/up/down biases (up/down without a gate)
  QkNormKind qk_norm = QkNormKind::None;
  PositionKind position_kind = PositionKind::Rope;
  int64_t rotary_dim = 0;       // values of each head RoPE rotates (the first ones); 0 = head_dim (partial: Phi)
  double attn_scale = 0;        // attention score multiplier; 0 = 1/sqrt(head_dim) (Gemma query_pre_attn_scalar,
                                // Granite attention_multiplier)
  double attn_softcap = 0;      // scores → cap·tanh(scores / cap) before masking; 0 = off (Gemma-2)
  int64_t sliding_window = 0;   // a local layer's query attends the last sliding_window keys, itself included; 0 = off
  std::vector<uint8_t> layer_sliding;  // per layer: 1 = local (sliding_window), 0 = global; empty = all alike
  std::vector<uint8_t> layer_no_rope;  // per layer: 1 = no positional rotation (SmolLM3 NoPE); empty = RoPE on all
  double rope_local_theta = 0;  // RoPE base of local layers, which also skip rope_scaling (Gemma-3); 0 = rope_theta
  double embedding_scale = 1;   // embeddings × this (Gemma sqrt(hidden), Granite embedding_multiplier)
  double residual_scale = 1;    // x += residual_scale · sublayer(x) (Granite residual_multiplier)
  double logit_scale = 1;       // logits × this (Granite 1 / logits_scaling)
  double final_logit_softcap = 0;  // logits → cap·tanh(logits / cap); 0 = off (Gemma-2)
  bool lm_head_bias = false;    // the output head has a bias (Phi-2)

  int64_t heads(int64_t layer) const;
  int64_t kv_heads(int64_t layer) const;
  int64_t ffn(int64_t layer) const;
  bool uniform_layers() const;
  // Per-layer attention variant, resolved from the vectors above.
  bool layer_is_sliding(int64_t layer) const;  // sliding_window > 0 and the layer is local
  bool layer_uses_rope(int64_t layer) const;   // position_kind == Rope and not a NoPE layer
  double layer_rope_theta(int64_t layer) const;
  bool layer_rope_scaled(int64_t layer) const;  // rope_scaling applies (Gemma-3 local layers skip it)
  int64_t rotary_dims() const { return rotary_dim > 0 ? rotary_dim : head_dim; }
  double attention_scale() const;  // attn_scale, or 1/sqrt(head_dim)
  bool has_gate() const { return mlp_kind != MlpKind::GeluTanh; }

  // Throws Error(BadInput) naming the offending field (prefixed with `source`, e.g. the config.json path).
  void validate(const std::string& source) const;
};

}  // namespace slmopt
