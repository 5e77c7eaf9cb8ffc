// The registry of canonical tensor names. The IR uses Hugging Face names (and layouts) for every family; every
// other naming scheme (GGUF, ONNX initializers) is translated in io/ through these helpers.
#pragma once

#include <cstdint>
#include <string>

namespace slmopt::names {

// Canonical names: the Hugging Face Llama names for every role a Llama block has, and names of the same style for
// the roles other families add. Each family's files map their own names onto these (Phi-3's fused qkv_proj and
// gate_up_proj and GPT-2's c_attn are split into q/k/v and gate/up; GPT-2's Conv1D weights are transposed).
// Beware the one historical name: "post_attention_layernorm" is the norm *before the MLP* (Llama's meaning);
// Gemma's and OLMo's post-attention norm (applied to the attention output) is attn_post_norm.
inline const std::string kEmbedTokens = "model.embed_tokens.weight";
inline const std::string kPositionEmbedding = "model.embed_positions.weight";  // learned positions [max_pos, hidden]
inline const std::string kFinalNorm = "model.norm.weight";
inline const std::string kFinalNormBias = "model.norm.bias";
inline const std::string kLmHead = "lm_head.weight";
inline const std::string kLmHeadBias = "lm_head.bias";

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
std::string gate_bias(int64_t layer);     // mlp.gate_proj.bias
std::string up_bias(int64_t layer);
std::string down_bias(int64_t layer);
std::string attn_norm_bias(int64_t layer);  // input_layernorm.bias (LayerNorm models)
std::string ffn_norm_bias(int64_t layer);   // post_attention_layernorm.bias
std::string attn_post_norm(int64_t layer);  // attn_post_norm.weight: on the attention output (Gemma, OLMo-2)
std::string ffn_post_norm(int64_t layer);   // ffn_post_norm.weight: on the MLP output (Gemma, OLMo-2)
std::string q_norm(int64_t layer);          // self_attn.q_norm.weight (Qwen3, Gemma-3, OLMo-2)
std::string k_norm(int64_t layer);          // self_attn.k_norm.weight

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
