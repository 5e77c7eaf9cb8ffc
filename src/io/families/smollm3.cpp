// SmolLM3ForCausalLM: a Llama block with NoPE layers. config.json's no_rope_layers has one entry per layer where
// 1 means "this layer uses RoPE" (the opposite of Config::layer_no_rope); when omitted, every
// no_rope_layer_interval-th layer (4: layers 3, 7, 11, ...) skips RoPE. With use_sliding_window, the NoPE layers
// are the local ones (layer_types when given). Tied head and rope_theta 2e6 by default.
#include <algorithm>

#include "family.h"
#include "slmopt/core/error.h"

namespace slmopt {
namespace {

void read_smollm3(const HfConfigJson& j, Config& c) {
  hf_require_activation(j, "hidden_act", {"silu"});
  hf_read_dimensions(j, c, {.max_position = 32768, .norm_eps = 1e-6, .tie_word_embeddings = true});
  hf_read_rope(j, c, 2000000.0);
  hf_read_attention_bias(j, c);
  c.mlp_bias = j.boolean_or("mlp_bias", false);

  std::vector<uint8_t> no_rope;
  if (j.has("no_rope_layers")) {
    const nlohmann::json& v = j.at("no_rope_layers");
    // transformers indexes the list by layer and accepts a longer one.
    if (!v.is_array() || static_cast<int64_t>(v.size()) < c.num_layers)
      j.fail("no_rope_layers", fmt::format("must list a 0/1 flag for each of the {} layers", c.num_layers));
    for (int64_t l = 0; l < c.num_layers; ++l) {
      const nlohmann::json& x = v[static_cast<size_t>(l)];
      if (!x.is_number_integer() || (x.get<int64_t>() != 0 && x.get<int64_t>() != 1))
        j.fail("no_rope_layers", fmt::format("entries must be 0 or 1, has {}", x.dump()));
      no_rope.push_back(x.get<int64_t>() == 1 ? 0 : 1);
    }
  } else {
    const int64_t interval = j.positive_integer_or("no_rope_layer_interval", 4);
    for (int64_t l = 0; l < c.num_layers; ++l) no_rope.push_back((l + 1) % interval == 0 ? 1 : 0);
  }
  const bool windowed = j.boolean_or("use_sliding_window", false) && j.has("sliding_window");
  hf_set_sliding(j, c, windowed ? j.positive_integer("sliding_window") : 0, no_rope);
  if (std::count(no_rope.begin(), no_rope.end(), uint8_t{1}) > 0) c.layer_no_rope = std::move(no_rope);
}

void write_smollm3(const Config& c, nlohmann::ordered_json& out) {
  hf_write_dimensions(c, out);
  hf_write_rope(c, out);
  out["attention_bias"] = c.attention_bias;
  out["mlp_bias"] = c.mlp_bias;
  nlohmann::ordered_json uses_rope = nlohmann::ordered_json::array();
  for (int64_t l = 0; l < c.num_layers; ++l) uses_rope.push_back(c.layer_uses_rope(l) ? 1 : 0);
  out["no_rope_layers"] = uses_rope;
  out["use_sliding_window"] = c.sliding_window > 0;
  out["sliding_window"] = c.sliding_window > 0 ? nlohmann::ordered_json(c.sliding_window) : nullptr;
  hf_write_layer_types(c, out);
}

}  // namespace

const FamilyDefinition& family_smollm3() {
  static const FamilyDefinition f = {
      .name = "smollm3",
      .architectures = {"SmolLM3ForCausalLM"},
      .model_type = "smollm3",
      .read_config = read_smollm3,
      .write_config = write_smollm3,
      .naming = hf_llama_naming,
      .is_buffer = hf_is_rotary_buffer,
      .gguf_architecture = "smollm3",
      // llama.cpp smollm3.cpp: the llama block with normal RoPE, no RoPE on every 4th layer (fixed in the graph).
      .gguf_architectures = {{.gguf_name = "smollm3", .interleaved_rope = true, .qkv_bias = true, .no_rope_step = 4}},
      .genai_model_type = "smollm3",
  };
  return f;
}

}  // namespace slmopt
