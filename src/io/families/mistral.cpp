// MistralForCausalLM: the Llama block and tensor names (llama.cpp) with no biases and a window on every layer
// (sliding_window, 4096 when the key is omitted, none when it is null).
//
// llama.cpp has no Mistral graph: it is written as "llama" (owned by llama.cpp), whose graph attends every
// position — exact up to the window; slmopt.hf_architecture brings the family back on reading.
#include "family.h"

namespace slmopt {
namespace {

void read_mistral(const HfConfigJson& j, Config& c) {
  hf_require_activation(j, "hidden_act", {"silu"});
  hf_read_dimensions(j, c, {.max_position = 4096 * 32, .norm_eps = 1e-6});
  hf_read_rope(j, c, 10000.0);
  const int64_t window = j.present("sliding_window") ? j.positive_integer_or("sliding_window", 0) : 4096;
  hf_set_sliding(j, c, window, std::vector<uint8_t>(static_cast<size_t>(c.num_layers), 1));
}

void write_mistral(const Config& c, nlohmann::ordered_json& out) {
  hf_write_dimensions(c, out);
  hf_write_rope(c, out);
  out["sliding_window"] = c.sliding_window > 0 ? nlohmann::ordered_json(c.sliding_window) : nullptr;
}

}  // namespace

const FamilyDefinition& family_mistral() {
  static const FamilyDefinition f = {
      .name = "mistral",
      .architectures = {"MistralForCausalLM"},
      .model_type = "mistral",
      .read_config = read_mistral,
      .write_config = write_mistral,
      .naming = hf_llama_naming,
      .is_buffer = hf_is_rotary_buffer,
      .gguf_architecture = "llama",
      .gguf_architectures = {},
      .genai_model_type = "mistral",
  };
  return f;
}

}  // namespace slmopt
