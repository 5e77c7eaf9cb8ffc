// Shared by the Gemma-2 and Gemma-3 family files: see hf_gemma.h.
#include <cmath>

#include "hf_gemma.h"

namespace slmopt {

void hf_read_gemma_common(const HfConfigJson& j, Config& c, const HfDefaults& defaults) {
  // Gemma's MLP reads hidden_activation; released configs also carry hidden_act, which transformers ignores.
  hf_require_activation(j, "hidden_activation", {"gelu_pytorch_tanh", "gelu_new"});
  hf_read_dimensions(j, c, defaults);
  hf_read_attention_bias(j, c);
  if (j.boolean_or("use_bidirectional_attention", false))
    j.unsupported("use_bidirectional_attention", "= true is not supported (slmopt runs causal decoders)");
  c.norm_unit_offset = true;
  c.norm_placement = NormPlacement::Sandwich;
  c.mlp_kind = MlpKind::GeGluTanh;
  // transformers multiplies by sqrt(hidden) cast to the embedding's dtype; the description keeps the exact value.
  c.embedding_scale = std::sqrt(static_cast<double>(c.hidden_size));
  const double scalar = j.positive_number_or("query_pre_attn_scalar", 256.0);
  c.attn_scale = std::pow(scalar, -0.5);
}

void hf_write_gemma_common(const Config& c, nlohmann::ordered_json& out) {
  hf_write_dimensions(c, out, "rms_norm_eps", "hidden_activation", "gelu_pytorch_tanh");
  out["hidden_act"] = "gelu_pytorch_tanh";
  out["attention_bias"] = c.attention_bias;
  // query_pre_attn_scalar = scale^-2; released models use integers (256, 144), so prefer the integer that gives
  // the scale back exactly.
  const double scale = c.attention_scale();
  double scalar = 1.0 / (scale * scale);
  if (std::pow(std::round(scalar), -0.5) == scale) scalar = std::round(scalar);
  out["query_pre_attn_scalar"] = scalar;
  out["attn_logit_softcapping"] = c.attn_softcap > 0 ? nlohmann::ordered_json(c.attn_softcap) : nullptr;
  out["final_logit_softcapping"] =
      c.final_logit_softcap > 0 ? nlohmann::ordered_json(c.final_logit_softcap) : nullptr;
  out["sliding_window"] = c.sliding_window > 0 ? nlohmann::ordered_json(c.sliding_window) : nullptr;
  hf_write_layer_types(c, out);
}

HfTensorNaming hf_gemma_naming(bool qk_norm) {
  HfTensorNaming n;
  n.global = {{"model.embed_tokens.weight", {"model.embed_tokens.weight"}},
              {"model.norm.weight", {"model.norm.weight"}},
              {"lm_head.weight", {"lm_head.weight"}}};
  n.layer = {{"input_layernorm.weight", {"input_layernorm.weight"}},
             {"post_attention_layernorm.weight", {"attn_post_norm.weight"}},
             {"pre_feedforward_layernorm.weight", {"post_attention_layernorm.weight"}},
             {"post_feedforward_layernorm.weight", {"ffn_post_norm.weight"}}};
  for (HfTensorName& row : hf_llama_projection_names()) n.layer.push_back(std::move(row));
  if (qk_norm)
    for (const char* s : {"self_attn.q_norm.weight", "self_attn.k_norm.weight"}) n.layer.push_back({s, {s}});
  return n;
}

}  // namespace slmopt
