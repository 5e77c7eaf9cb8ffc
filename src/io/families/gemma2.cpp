// Gemma2ForCausalLM: (1 + w) RMSNorms around both sublayers (sandwich), GeGLU (tanh) MLP, embeddings × sqrt(hidden),
// attention scale query_pre_attn_scalar^-0.5, tanh soft-capping of scores (attn_logit_softcapping, 50) and logits
// (final_logit_softcapping, 30), a window (sliding_window, 4096) on every other layer starting with layer 0
// (layer_types when given), tied head. Gemma's norm names differ from Llama's: its post_attention_layernorm is on
// the attention *output* (canonical attn_post_norm), pre_feedforward_layernorm is the pre-MLP norm (canonical
// post_attention_layernorm), post_feedforward_layernorm is canonical ffn_post_norm.
#include <cmath>

#include "family.h"
#include "hf_gemma.h"

namespace slmopt {
namespace {

void read_gemma2(const HfConfigJson& j, Config& c) {
  hf_read_gemma_common(j, c, {.max_position = 8192, .norm_eps = 1e-6, .tie_word_embeddings = true, .head_dim = 256});
  hf_read_rope(j, c, 10000.0);
  c.attn_softcap = hf_read_softcap(j, "attn_logit_softcapping", 50.0);
  c.final_logit_softcap = hf_read_softcap(j, "final_logit_softcapping", 30.0);
  std::vector<uint8_t> flags;
  for (int64_t l = 0; l < c.num_layers; ++l) flags.push_back((l + 1) % 2 != 0 ? 1 : 0);
  const int64_t window = j.present("sliding_window") ? j.positive_integer_or("sliding_window", 0) : 4096;
  hf_set_sliding(j, c, window, std::move(flags));
}

void write_gemma2(const Config& c, nlohmann::ordered_json& out) {
  hf_write_gemma_common(c, out);
  hf_write_rope(c, out);
}

const HfTensorNaming& naming() {
  static const HfTensorNaming n = hf_gemma_naming(false);
  return n;
}

}  // namespace

const FamilyDefinition& family_gemma2() {
  static const FamilyDefinition f = {
      .name = "gemma2",
      .architectures = {"Gemma2ForCausalLM"},
      .model_type = "gemma2",
      .read_config = read_gemma2,
      .write_config = write_gemma2,
      .naming = naming,
      .is_buffer = hf_is_rotary_buffer,
      .gguf_architecture = "gemma2",
      // llama.cpp gemma2.cpp: (1+w) RMSNorm in sandwich placement, GeGLU, embeddings × sqrt(hidden), local layers on
      // even indices unless a pattern is given (window 4096 without the key), score and logit soft-capping always on
      // (defaults 50 / 30), tied head; 46 layers is its 27B type, which scales scores by 1/sqrt(hidden / heads).
      .gguf_architectures = {{.gguf_name = "gemma2", .norm_placement = NormPlacement::Sandwich,
                              .mlp = MlpKind::GeGluTanh, .norm_unit_offset = true, .head = gguf_arch::Head::TiedOnly,
                              .swa = gguf_arch::Swa::Pattern, .swa_default_pattern = 2, .swa_default_window = 4096,
                              .swa_rope_base = true, .swa_rope_scaled = true, .attn_softcap = true,
                              .final_softcap = true, .final_softcap_always = true,
                              .embedding_scale_sqrt_hidden = true, .attn_scale = gguf_arch::AttnScale::Gemma,
                              .gemma_hidden_scale_layers = 46}},
      .genai_model_type = "gemma2",
  };
  return f;
}

}  // namespace slmopt
