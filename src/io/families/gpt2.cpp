// GPT2LMHeadModel (GPT-2 and its fine-tunes): LayerNorm with bias before attention and MLP, learned positions
// (wpe), biases on every linear, a gate-less GELU (tanh form, "gelu_new") MLP, the head tied to wte. config.json
// uses GPT-2's own keys (n_embd, n_layer, n_head, n_inner — null means 4·n_embd —, n_positions, n_ctx,
// layer_norm_epsilon, activation_function). Tensors live under "transformer." (checkpoints saved from GPT2Model,
// such as openai-community/gpt2, omit the prefix; both load) and blocks under "transformer.h.N.":
//
//   ln_1 / ln_2                 input_layernorm / post_attention_layernorm (weight, bias)
//   attn.c_attn (Conv1D)        q, k, v rows fused, in that order
//   attn.c_proj (Conv1D)        o_proj
//   mlp.c_fc / mlp.c_proj       up_proj / down_proj (Conv1D)
//   wte / wpe / ln_f            embed_tokens / embed_positions / model.norm
//
// Conv1D stores [in, out] (transformers' pytorch_utils.Conv1D computes x·W + b), so those weights are transposed
// at load and back on write. The causal-mask buffers attn.bias / attn.masked_bias of older checkpoints are dropped.
// Variants transformers implements but slmopt's decoder does not (scale_attn_by_inverse_layer_idx,
// reorder_and_upcast_attn, unscaled attention, cross-attention) are refused naming the key.
#include "family.h"
#include "slmopt/core/error.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt {
namespace {

void read_gpt2(const HfConfigJson& j, Config& c) {
  hf_require_float_checkpoint(j);
  hf_require_activation(j, "activation_function", {"gelu_new", "gelu_pytorch_tanh"});
  for (const char* flag : {"scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn", "add_cross_attention"})
    if (j.boolean_or(flag, false)) j.unsupported(flag, "= true is not supported");
  if (!j.boolean_or("scale_attn_weights", true)) j.unsupported("scale_attn_weights", "= false is not supported");
  c.hidden_size = j.positive_integer_or("n_embd", 768);
  c.num_layers = j.positive_integer_or("n_layer", 12);
  c.num_heads = c.num_kv_heads = j.positive_integer_or("n_head", 12);
  c.intermediate_size = j.positive_integer_or("n_inner", 4 * c.hidden_size);
  c.max_position = j.positive_integer_or("n_positions", 1024);
  c.vocab_size = j.positive_integer_or("vocab_size", 50257);
  if (c.hidden_size % c.num_heads != 0)
    j.fail("n_embd", fmt::format("({}) is not a multiple of n_head ({})", c.hidden_size, c.num_heads));
  c.head_dim = c.hidden_size / c.num_heads;
  c.norm_eps = j.positive_number_or("layer_norm_epsilon", 1e-5);
  c.tie_word_embeddings = j.boolean_or("tie_word_embeddings", true);
  c.norm_kind = NormKind::LayerNorm;
  c.norm_bias = true;
  c.position_kind = PositionKind::Learned;
  c.mlp_kind = MlpKind::GeluTanh;
  c.attention_bias = c.attention_out_bias = c.mlp_bias = true;
}

// The keys of a released GPT-2 config.json, in its order.
void write_gpt2(const Config& c, nlohmann::ordered_json& out) {
  if (c.num_heads * c.head_dim != c.hidden_size)
    throw_error(ErrorKind::Unsupported, "GPT2LMHeadModel config.json cannot express {} heads of {} (head_dim is "
                "n_embd / n_head = {} / {}): GPT-2's attention keeps n_embd wide", c.num_heads, c.head_dim,
                c.hidden_size, c.num_heads);
  out["activation_function"] = "gelu_new";
  out["layer_norm_epsilon"] = c.norm_eps;
  out["n_ctx"] = c.max_position;
  out["n_embd"] = c.hidden_size;
  out["n_head"] = c.num_heads;
  out["n_inner"] = c.intermediate_size == 4 * c.hidden_size ? nlohmann::ordered_json(nullptr)
                                                            : nlohmann::ordered_json(c.intermediate_size);
  out["n_layer"] = c.num_layers;
  out["n_positions"] = c.max_position;
  out["scale_attn_weights"] = true;
  if (!c.tie_word_embeddings) out["tie_word_embeddings"] = false;
  out["vocab_size"] = c.vocab_size;
}

const HfTensorNaming& naming() {
  static const HfTensorNaming n = [] {
    HfTensorNaming t;
    t.layer_prefix = "transformer.h.";
    t.optional_prefix = "transformer.";
    t.global = {{"transformer.wte.weight", {names::kEmbedTokens}},
                {"transformer.wpe.weight", {names::kPositionEmbedding}},
                {"transformer.ln_f.weight", {names::kFinalNorm}},
                {"transformer.ln_f.bias", {names::kFinalNormBias}},
                {"lm_head.weight", {names::kLmHead}}};
    t.layer = {{"ln_1.weight", {"input_layernorm.weight"}},
               {"ln_1.bias", {"input_layernorm.bias"}},
               {"attn.c_attn.weight", {"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight"},
                /*transposed=*/true},
               {"attn.c_attn.bias", {"self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias"}},
               {"attn.c_proj.weight", {"self_attn.o_proj.weight"}, /*transposed=*/true},
               {"attn.c_proj.bias", {"self_attn.o_proj.bias"}},
               {"ln_2.weight", {"post_attention_layernorm.weight"}},
               {"ln_2.bias", {"post_attention_layernorm.bias"}},
               {"mlp.c_fc.weight", {"mlp.up_proj.weight"}, /*transposed=*/true},
               {"mlp.c_fc.bias", {"mlp.up_proj.bias"}},
               {"mlp.c_proj.weight", {"mlp.down_proj.weight"}, /*transposed=*/true},
               {"mlp.c_proj.bias", {"mlp.down_proj.bias"}}};
    return t;
  }();
  return n;
}

bool is_mask_buffer(const std::string& name) {
  return name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias");
}

}  // namespace

const FamilyDefinition& family_gpt2() {
  static const FamilyDefinition f = {
      .name = "gpt2",
      .architectures = {"GPT2LMHeadModel"},
      .model_type = "gpt2",
      .read_config = read_gpt2,
      .write_config = write_gpt2,
      .naming = naming,
      .is_buffer = is_mask_buffer,
      .gguf_architecture = "gpt2",
      // llama.cpp gpt2.cpp: LayerNorm with biases, learned positions, fused attn_qkv, GELU MLP, every bias required.
      .gguf_architectures = {{.gguf_name = "gpt2", .norm_kind = NormKind::LayerNorm, .mlp = MlpKind::GeluTanh,
                              .position = PositionKind::Learned, .qkv_bias = true, .out_bias = true,
                              .mlp_bias = true, .norm_bias = true, .biases_required = true, .fused_qkv = true,
                              .q_width_is_hidden = true}},
      .genai_model_type = "gpt2",
  };
  return f;
}

}  // namespace slmopt
