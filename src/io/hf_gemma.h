// What Gemma-2 and Gemma-3 (text) share in config.json and tensor names (hf_gemma_common.cpp); each has its own
// family file for the rest (families/gemma2.cpp, families/gemma3.cpp).
#pragma once

#include "hf_family.h"

namespace slmopt {

// hidden_activation (gelu_pytorch_tanh), dimensions, attention_bias, the (1 + w) sandwich norms, GeGLU, the
// sqrt(hidden) embedding scale and query_pre_attn_scalar (256). use_bidirectional_attention is refused.
void hf_read_gemma_common(const HfConfigJson& j, Config& c, const HfDefaults& defaults);
// The keys above plus the soft-caps, sliding_window and layer_types.
void hf_write_gemma_common(const Config& c, nlohmann::ordered_json& out);
// Gemma's tensor names; with q/k norms for Gemma-3.
HfTensorNaming hf_gemma_naming(bool qk_norm);

}  // namespace slmopt
