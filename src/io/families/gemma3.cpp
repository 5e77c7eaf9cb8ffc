// Gemma3ForCausalLM (model_type gemma3_text; the multimodal Gemma3ForConditionalGeneration is not a decoder-only
// checkpoint): Gemma-2's block without soft-capping by default, a per-head (1 + w) RMSNorm on q and k, five local
// layers per global one (sliding_window_pattern 6: layer l is local unless (l + 1) % 6 == 0; layer_types when
// given), window 4096 unless set, and two RoPE bases: rope_theta (1e6) with rope_scaling on global layers,
// rope_local_base_freq (1e4) unscaled on local ones. transformers ≥ 5 writes rope_parameters per layer type
// ({"full_attention": {...}, "sliding_attention": {...}}); both forms are read.
#include <cmath>

#include "family.h"
#include "hf_gemma.h"

namespace slmopt {
namespace {

void read_gemma3(const HfConfigJson& j, Config& c) {
  hf_read_gemma_common(j, c,
                       {.max_position = 131072, .norm_eps = 1e-6, .tie_word_embeddings = true, .head_dim = 256});
  c.qk_norm = QkNormKind::PerHead;
  c.rope_local_theta = j.positive_number_or("rope_local_base_freq", 10000.0);
  const nlohmann::json* per_type = nullptr;
  if (j.has("rope_parameters") && j.at("rope_parameters").is_object() &&
      j.at("rope_parameters").contains("full_attention"))
    per_type = &j.at("rope_parameters");
  if (per_type != nullptr) {
    nlohmann::json global = {{"rope_parameters", (*per_type)["full_attention"]}};
    hf_read_rope(HfConfigJson(global, j.source(), "rope_parameters.full_attention."), c, 1e6);
    if (per_type->contains("sliding_attention")) {
      const HfConfigJson local((*per_type)["sliding_attention"], j.source(), "rope_parameters.sliding_attention.");
      c.rope_local_theta = local.positive_number_or("rope_theta", c.rope_local_theta);
    }
  } else {
    hf_read_rope(j, c, 1e6);
  }
  c.attn_softcap = hf_read_softcap(j, "attn_logit_softcapping", 0.0);
  c.final_logit_softcap = hf_read_softcap(j, "final_logit_softcapping", 0.0);
  const int64_t pattern = j.positive_integer_or("sliding_window_pattern", 6);
  std::vector<uint8_t> flags;
  for (int64_t l = 0; l < c.num_layers; ++l) flags.push_back((l + 1) % pattern != 0 ? 1 : 0);
  const int64_t window = j.present("sliding_window") ? j.positive_integer_or("sliding_window", 0) : 4096;
  hf_set_sliding(j, c, window, std::move(flags));
}

void write_gemma3(const Config& c, nlohmann::ordered_json& out) {
  hf_write_gemma_common(c, out);
  hf_write_rope(c, out);
  out["rope_local_base_freq"] = c.rope_local_theta > 0 ? c.rope_local_theta : c.rope_theta;
  // Releases before layer_types read only sliding_window_pattern: write it when the layers follow one.
  const std::vector<uint8_t> flags = hf_layer_sliding_flags(c);
  int64_t pattern = c.num_layers + 1;
  for (int64_t l = 0; l < c.num_layers; ++l)
    if (!flags[static_cast<size_t>(l)]) {
      pattern = l + 1;
      break;
    }
  bool periodic = true;
  for (int64_t l = 0; l < c.num_layers; ++l)
    periodic = periodic && flags[static_cast<size_t>(l)] == ((l + 1) % pattern != 0 ? 1 : 0);
  if (periodic) out["sliding_window_pattern"] = pattern;
}

const HfTensorNaming& naming() {
  static const HfTensorNaming n = hf_gemma_naming(true);
  return n;
}

}  // namespace

const FamilyDefinition& family_gemma3() {
  // onnxruntime-genai calls the text model "gemma3_text" (its "gemma3" is the vision-language type).
  static const FamilyDefinition f = {
      .name = "gemma3",
      .architectures = {"Gemma3ForCausalLM"},
      .model_type = "gemma3_text",
      .read_config = read_gemma3,
      .write_config = write_gemma3,
      .naming = naming,
      .is_buffer = hf_is_rotary_buffer,
      .gguf_architecture = "gemma3",
      // llama.cpp gemma3.cpp: as gemma2 plus per-head q/k norms, no score soft-capping, optional logit soft-capping,
      // local layers (pattern 6 by default) on their own RoPE base without scaling; 62 layers is its 27B type.
      .gguf_architectures = {{.gguf_name = "gemma3", .norm_placement = NormPlacement::Sandwich,
                              .mlp = MlpKind::GeGluTanh, .qk_norm = QkNormKind::PerHead, .norm_unit_offset = true,
                              .swa = gguf_arch::Swa::Pattern, .swa_default_pattern = 6, .swa_rope_base = true,
                              .final_softcap = true, .embedding_scale_sqrt_hidden = true,
                              .attn_scale = gguf_arch::AttnScale::Gemma, .gemma_hidden_scale_layers = 62}},
      .genai_model_type = "gemma3_text",
  };
  return f;
}

}  // namespace slmopt
