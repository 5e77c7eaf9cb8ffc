// PhiForCausalLM (Phi-1/1.5/2): one LayerNorm with bias feeds attention and MLP in parallel (x += attn(n) +
// mlp(n)), partial rotary (partial_rotary_factor, 0.5 when omitted; Phi-2 has 0.4 → 32 of 80), biases on every
// linear including the head, GELU (tanh form, "gelu_new") MLP without a gate. Names: self_attn.dense is o_proj,
// mlp.fc1/fc2 are up/down, model.final_layernorm is model.norm. qk_layernorm (a LayerNorm with bias on q and k,
// unused by released Phi models) is refused.
#include "family.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt {
namespace {

void read_phi2(const HfConfigJson& j, Config& c) {
  hf_require_activation(j, "hidden_act", {"gelu_new", "gelu_pytorch_tanh"});
  hf_read_dimensions(j, c, {.max_position = 2048, .norm_eps = 1e-5, .eps_key = "layer_norm_eps"});
  hf_read_partial_rotary(j, c, 0.5);
  hf_read_rope(j, c, 10000.0);
  if (j.boolean_or("qk_layernorm", false)) j.unsupported("qk_layernorm", "= true is not supported");
  c.norm_kind = NormKind::LayerNorm;
  c.norm_bias = true;
  c.residual_layout = ResidualLayout::Parallel;
  c.mlp_kind = MlpKind::GeluTanh;
  c.attention_bias = c.attention_out_bias = c.mlp_bias = true;
  c.lm_head_bias = true;
}

void write_phi2(const Config& c, nlohmann::ordered_json& out) {
  hf_write_dimensions(c, out, "layer_norm_eps", "hidden_act", "gelu_new");
  hf_write_partial_rotary(c, out);
  hf_write_rope(c, out);
  out["qk_layernorm"] = false;
}

const HfTensorNaming& naming() {
  static const HfTensorNaming n = {
    {{names::kEmbedTokens, {names::kEmbedTokens}},
     {"model.final_layernorm.weight", {names::kFinalNorm}},
     {"model.final_layernorm.bias", {names::kFinalNormBias}},
     {names::kLmHead, {names::kLmHead}},
     {names::kLmHeadBias, {names::kLmHeadBias}}},
    {{"input_layernorm.weight", {"input_layernorm.weight"}},
     {"input_layernorm.bias", {"input_layernorm.bias"}},
     {"self_attn.q_proj.weight", {"self_attn.q_proj.weight"}},
     {"self_attn.q_proj.bias", {"self_attn.q_proj.bias"}},
     {"self_attn.k_proj.weight", {"self_attn.k_proj.weight"}},
     {"self_attn.k_proj.bias", {"self_attn.k_proj.bias"}},
     {"self_attn.v_proj.weight", {"self_attn.v_proj.weight"}},
     {"self_attn.v_proj.bias", {"self_attn.v_proj.bias"}},
     {"self_attn.dense.weight", {"self_attn.o_proj.weight"}},
     {"self_attn.dense.bias", {"self_attn.o_proj.bias"}},
     {"mlp.fc1.weight", {"mlp.up_proj.weight"}},
     {"mlp.fc1.bias", {"mlp.up_proj.bias"}},
     {"mlp.fc2.weight", {"mlp.down_proj.weight"}},
     {"mlp.fc2.bias", {"mlp.down_proj.bias"}}}};
  return n;
}

}  // namespace

const FamilyDefinition& family_phi2() {
  static const FamilyDefinition f = {
      .name = "phi2",
      .architectures = {"PhiForCausalLM"},
      .model_type = "phi",
      .read_config = read_phi2,
      .write_config = write_phi2,
      .naming = naming,
      .is_buffer = hf_is_rotary_buffer,
      .gguf_architecture = "phi2",
      // llama.cpp phi2.cpp: LayerNorm with biases, one norm feeding attention and MLP in parallel, GELU MLP with
      // biases, partial NEOX RoPE (rope.dimension_count), an output head with bias that the loader requires.
      .gguf_architectures = {{.gguf_name = "phi2", .norm_kind = NormKind::LayerNorm,
                              .residual = ResidualLayout::Parallel, .mlp = MlpKind::GeluTanh, .partial_rotary = true,
                              .qkv_bias = true, .out_bias = true, .mlp_bias = true, .norm_bias = true,
                              .biases_required = true,
                              .head = gguf_arch::Head::Required, .head_bias = true, .head_bias_required = true,
                              .q_width_is_hidden = true}},
      .genai_model_type = "phi",
  };
  return f;
}

}  // namespace slmopt
