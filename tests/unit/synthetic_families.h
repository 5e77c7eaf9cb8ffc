// Small random decoders of every family, built in memory from a Config (no files): one description per family,
// shaped like the family's real config.json (its norm, placement, MLP, q/k norm, rotary, windows, soft-caps and
// multipliers) with shrunk sizes; random_model (ir/random_weights.h) fills them.
// Rows are 256 wide so K-quants apply. Header-only; used by the GGUF unit tests and the llama.cpp consumer tests.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "slmopt/ir/decoder_tensors.h"
#include "slmopt/ir/model.h"
#include "slmopt/ir/random_weights.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt::testing {

struct FamilyCase {
  const char* name;  // test name, e.g. "gemma3"
  const char* gguf_architecture;
  Config (*config)();
};

inline Config base_decoder(const char* family, const char* hf_class, int64_t layers) {
  Config c;
  c.family = family;
  c.architecture = hf_class;
  // Not the family's name: llama.cpp gives tokens of a model whose general.name contains "phi3" special attributes
  // and fails to load a vocabulary without them (</s>, <unk>, <s>, <|endoftext|>).
  c.name = "synthetic";
  c.hidden_size = 256;
  c.intermediate_size = 512;
  c.num_layers = layers;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 64;
  c.vocab_size = 320;
  c.max_position = 2048;
  c.norm_eps = 1e-5;
  return c;
}

// Llama-3.2 / SmolLM2: tied, Llama-3 RoPE scaling (original context small enough that head_dim 64's pairs fall
// in all three bands).
inline Config llama32_config() {
  Config c = base_decoder("llama", "LlamaForCausalLM", 3);
  c.tie_word_embeddings = true;
  c.rope_theta = 500000.0;
  c.rope_scaling.type = RopeScalingType::Llama3;
  c.rope_scaling.factor = 32.0;
  c.rope_scaling.low_freq_factor = 1.0;
  c.rope_scaling.high_freq_factor = 4.0;
  c.rope_scaling.original_max_position = 512;
  return c;
}

// Mistral: sliding window on every layer (wider than the windows the tests evaluate: llama.cpp's llama graph has
// no window).
inline Config mistral_config() {
  Config c = base_decoder("mistral", "MistralForCausalLM", 2);
  c.sliding_window = 1024;
  return c;
}

inline Config qwen2_config() {
  Config c = base_decoder("qwen2", "Qwen2ForCausalLM", 2);
  c.attention_bias = true;
  c.tie_word_embeddings = true;
  c.rope_theta = 1000000.0;
  c.norm_eps = 1e-6;
  return c;
}

// Phi-2: LayerNorm with biases, one norm feeding attention and MLP in parallel, GELU(tanh), partial rotary 0.5,
// biases everywhere including the untied head.
inline Config phi2_config() {
  Config c = base_decoder("phi2", "PhiForCausalLM", 2);
  c.num_kv_heads = 4;
  c.norm_kind = NormKind::LayerNorm;
  c.norm_bias = true;
  c.residual_layout = ResidualLayout::Parallel;
  c.mlp_kind = MlpKind::GeluTanh;
  c.rotary_dim = 32;
  c.attention_bias = true;
  c.attention_out_bias = true;
  c.mlp_bias = true;
  c.lm_head_bias = true;
  return c;
}

// Phi-3.5 / Phi-4-mini: partial rotary 0.75, LongRoPE (llama.cpp picks the short factors below the original
// context, as Hugging Face does for short sequences), fused projections in the checkpoint (split in the IR).
inline Config phi3_config() {
  Config c = base_decoder("phi3", "Phi3ForCausalLM", 2);
  c.rotary_dim = 48;
  c.max_position = 16384;
  RopeScaling& r = c.rope_scaling;
  r.type = RopeScalingType::LongRope;
  r.original_max_position = 2048;
  r.factor = 8.0;
  r.attention_factor = std::sqrt(1.0 + std::log(8.0) / std::log(2048.0));
  for (int i = 0; i < 24; ++i) {
    r.short_factor.push_back(1.0 + 0.05 * i);
    r.long_factor.push_back(1.0 + 0.5 * i);
  }
  return c;
}

inline Config qwen3_config() {
  Config c = base_decoder("qwen3", "Qwen3ForCausalLM", 2);
  c.qk_norm = QkNormKind::PerHead;
  c.tie_word_embeddings = true;
  c.rope_theta = 1000000.0;
  c.norm_eps = 1e-6;
  return c;
}

// Gemma-2: (1+w) RMSNorm in sandwich placement, GeGLU, embeddings × sqrt(hidden), soft-capping, local layers on
// even indices with a window narrower than the test windows, head_dim ≠ hidden / heads.
inline Config gemma2_config() {
  Config c = base_decoder("gemma2", "Gemma2ForCausalLM", 4);
  c.head_dim = 32;
  c.norm_unit_offset = true;
  c.norm_placement = NormPlacement::Sandwich;
  c.mlp_kind = MlpKind::GeGluTanh;
  c.tie_word_embeddings = true;
  c.embedding_scale = 16.0;  // sqrt(256)
  c.attn_scale = 1.0 / std::sqrt(32.0);  // query_pre_attn_scalar = head_dim
  c.attn_softcap = 50.0;
  c.final_logit_softcap = 30.0;
  c.sliding_window = 16;
  c.layer_sliding = {1, 0, 1, 0};
  c.norm_eps = 1e-6;
  return c;
}

// Gemma-3: as Gemma-2 without soft-capping, with per-head q/k norms, five local layers per global one, a local
// RoPE base and linear scaling on the global layers only.
inline Config gemma3_config() {
  Config c = base_decoder("gemma3", "Gemma3ForCausalLM", 6);
  c.head_dim = 32;
  c.norm_unit_offset = true;
  c.norm_placement = NormPlacement::Sandwich;
  c.mlp_kind = MlpKind::GeGluTanh;
  c.qk_norm = QkNormKind::PerHead;
  c.tie_word_embeddings = true;
  c.embedding_scale = 16.0;
  c.sliding_window = 16;
  c.layer_sliding = {1, 1, 1, 1, 1, 0};
  c.rope_theta = 1000000.0;
  c.rope_local_theta = 10000.0;
  c.rope_scaling.type = RopeScalingType::Linear;
  c.rope_scaling.factor = 8.0;
  c.norm_eps = 1e-6;
  return c;
}

// SmolLM3: no RoPE on every 4th layer.
inline Config smollm3_config() {
  Config c = base_decoder("smollm3", "SmolLM3ForCausalLM", 4);
  c.tie_word_embeddings = true;
  c.layer_no_rope = {0, 0, 0, 1};
  c.rope_theta = 5000000.0;
  c.norm_eps = 1e-6;
  return c;
}

// Granite: embedding, residual, attention and logit multipliers.
inline Config granite_config() {
  Config c = base_decoder("granite", "GraniteForCausalLM", 2);
  c.tie_word_embeddings = true;
  c.embedding_scale = 12.0;
  c.residual_scale = 0.22;
  c.attn_scale = 0.015625;
  c.logit_scale = 1.0 / 8.0;
  c.norm_eps = 1e-6;
  return c;
}

// OLMo-2: norms after attention and MLP only, q/k RMSNorm over the whole projection, untied head.
inline Config olmo2_config() {
  Config c = base_decoder("olmo2", "Olmo2ForCausalLM", 2);
  c.norm_placement = NormPlacement::Post;
  c.qk_norm = QkNormKind::Whole;
  c.rope_theta = 500000.0;
  c.norm_eps = 1e-6;
  return c;
}

inline std::vector<FamilyCase> family_cases() {
  return {{"llama32", "llama", llama32_config},   {"mistral", "llama", mistral_config},
          {"qwen2", "qwen2", qwen2_config},       {"phi2", "phi2", phi2_config},
          {"phi3", "phi3", phi3_config},          {"qwen3", "qwen3", qwen3_config},
          {"gemma2", "gemma2", gemma2_config},    {"gemma3", "gemma3", gemma3_config},
          {"smollm3", "smollm3", smollm3_config}, {"granite", "granite", granite_config},
          {"olmo2", "olmo2", olmo2_config}};
}

}  // namespace slmopt::testing
