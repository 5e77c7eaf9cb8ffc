// The registry of canonical tensor names. The IR uses Hugging Face names (and layouts) for every family; every
// other naming scheme (GGUF, ONNX initializers) is translated in io/ through these helpers.
#pragma once

#include <cstdint>
#include <string>

namespace slmopt::names {

// Llama family (Llama, Mistral, Qwen2).
inline const std::string kEmbedTokens = "model.embed_tokens.weight";
inline const std::string kFinalNorm = "model.norm.weight";
inline const std::string kLmHead = "lm_head.weight";

std::string layer_prefix(int64_t layer);  // "model.layers.N."
std::string attn_norm(int64_t layer);     // input_layernorm.weight
std::string ffn_norm(int64_t layer);      // post_attention_layernorm.weight
std::string q_proj(int64_t layer);        // self_attn.q_proj.weight
std::string k_proj(int64_t layer);
std::string v_proj(int64_t layer);
std::string o_proj(int64_t layer);
std::string q_bias(int64_t layer);        // self_attn.q_proj.bias
std::string k_bias(int64_t layer);
std::string v_bias(int64_t layer);
std::string o_bias(int64_t layer);
std::string gate_proj(int64_t layer);     // mlp.gate_proj.weight
std::string up_proj(int64_t layer);
std::string down_proj(int64_t layer);

// GPT-2 family (GPT2LMHeadModel). Conv1D weights are transposed to the IR's [out, in] layout at load:
// c_attn [3·hidden, hidden] (rows: all Q, then K, then V), c_proj [hidden, hidden], c_fc [ffn, hidden],
// mlp c_proj [hidden, ffn]. The output head is tied to wte.
namespace gpt2 {
inline const std::string kTokenEmbedding = "transformer.wte.weight";
inline const std::string kPositionEmbedding = "transformer.wpe.weight";
inline const std::string kFinalNormWeight = "transformer.ln_f.weight";
inline const std::string kFinalNormBias = "transformer.ln_f.bias";
std::string layer_prefix(int64_t layer);  // "transformer.h.N."
// "transformer.h.N." + suffix, e.g. block(0, "attn.c_attn.weight").
inline std::string block(int64_t layer, const std::string& suffix) { return layer_prefix(layer) + suffix; }
}  // namespace gpt2

// True for the 2-D weights of linear layers (the tensors quantizers touch: llama *_proj, GPT-2 c_attn/c_proj/c_fc,
// lm_head), false for norms, biases and the embedding tables.
bool is_linear_weight(const std::string& name);

}  // namespace slmopt::names
