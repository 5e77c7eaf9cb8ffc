// What the family files (families/<name>.cpp, see family.h) share on the Hugging Face side (private to io/):
// typed config.json access, the tensor-name table, and the config.json keys and name tables several families have
// in common (hf_decoder_keys.cpp; Gemma's in hf_gemma.h).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "slmopt/ir/config.h"

namespace slmopt {

// Typed access to config.json fields; every error is one line naming the file and the field. A field that is
// present but null counts as absent (HF writes "rope_scaling": null, "num_key_value_heads": null), except where
// a family asks present(): Gemma-2's "final_logit_softcapping": null turns soft-capping off, absence means 30.
class HfConfigJson {
 public:
  // `prefix` names a nested object in errors ("rope_scaling." → "rope_scaling.factor is missing").
  HfConfigJson(const nlohmann::json& json, std::string source, std::string prefix = "")
      : json_(json), source_(std::move(source)), prefix_(std::move(prefix)) {}

  bool has(const char* field) const { return json_.contains(field) && !json_[field].is_null(); }
  bool present(const char* field) const { return json_.contains(field); }  // null included
  const nlohmann::json& at(const char* field) const { return json_.at(field); }
  const std::string& source() const { return source_; }
  const std::string& prefix() const { return prefix_; }

  int64_t positive_integer(const char* field) const;                        // required, > 0
  int64_t positive_integer_or(const char* field, int64_t fallback) const;   // optional, > 0 when present
  double number_or(const char* field, double fallback) const;
  double positive_number_or(const char* field, double fallback) const;      // optional, > 0 and finite
  bool boolean_or(const char* field, bool fallback) const;
  std::string string_or(const char* field, const std::string& fallback) const;
  std::vector<double> numbers(const char* field) const;                     // required list of numbers

  [[noreturn]] void fail(const std::string& field, const std::string& why) const;
  // Error(Unsupported) naming the field: a valid value slmopt's decoder cannot run.
  [[noreturn]] void unsupported(const std::string& field, const std::string& why) const;

 private:
  const nlohmann::json& json_;
  std::string source_;
  std::string prefix_;
};

// One row of a family's tensor-name table. Layer rows name the part after the family's layer prefix on the
// Hugging Face side ("model.layers.N.", GPT-2's "transformer.h.N.") and after "model.layers.N." on the canonical
// side; global rows name whole tensors. A row with several canonical names is a fused Hugging Face tensor whose
// row blocks are those canonical tensors, in order (Phi-3's qkv_proj = q, k, v rows; gate_up_proj = gate, up
// rows); the block sizes come from decoder_tensors(config). A transposed row is stored [in, out] (GPT-2's
// Conv1D): transposed at load, and back on write.
struct HfTensorName {
  std::string hf;
  std::vector<std::string> canonical;
  bool transposed = false;
};

struct HfTensorNaming {
  std::vector<HfTensorName> global;
  std::vector<HfTensorName> layer;
  std::string layer_prefix = "model.layers.";
  // A prefix some checkpoints of the family leave out (GPT-2 saved from GPT2Model: "h.0.ln_1.weight", "wte.weight"):
  // a stored name the table lacks is looked up again with it prepended. Written names always carry it.
  std::string optional_prefix;
};

// ---- shared pieces of the family files (hf_decoder_keys.cpp) ----

// transformers' defaults for the keys every Llama-like config may omit.
struct HfDefaults {
  int64_t max_position = 2048;
  double norm_eps = 1e-6;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;
  int64_t head_dim = 0;  // 0: hidden_size / num_attention_heads
  const char* eps_key = "rms_norm_eps";
};

// Refuses pre-quantized configs (quantization_config) and activations other than `allowed` (first = default).
void hf_require_float_checkpoint(const HfConfigJson& j);
void hf_require_activation(const HfConfigJson& j, const char* key, std::vector<std::string> allowed);
// hidden/intermediate/layers/heads/KV heads/head_dim/vocab/max_position/eps/tie.
void hf_read_dimensions(const HfConfigJson& j, Config& c, const HfDefaults& d);
// rotary_dim from partial_rotary_factor (top level, or inside rope_parameters), truncated as transformers does.
void hf_read_partial_rotary(const HfConfigJson& j, Config& c, double fallback);
// rope_theta and rope_scaling / rope_parameters (default, linear, llama3, longrope/su). LongRoPE's
// original_max_position_embeddings comes from the top level when present (Phi-3), else from rope_scaling, else
// `longrope_original_default`. Call after the dimensions and rotary_dim are known.
void hf_read_rope(const HfConfigJson& j, Config& c, double default_theta, int64_t longrope_original_default = 0);
// Per-layer attention kinds: "layer_types" when present (full_attention / sliding_attention), else `fallback`.
// Stores the canonical form: no window when no layer is local, an empty flag list when every layer is.
void hf_set_sliding(const HfConfigJson& j, Config& c, int64_t window, std::vector<uint8_t> fallback);
// Qwen2/Qwen3: use_sliding_window (default false) with sliding_window (default 4096) makes layers from
// max_window_layers (default 28) on local, unless layer_types says otherwise.
void hf_read_qwen_sliding(const HfConfigJson& j, Config& c);
void hf_write_qwen_sliding(const Config& c, nlohmann::ordered_json& out);
// Attention biases as "attention_bias" means in Llama-like classes: q/k/v and o_proj together.
void hf_read_attention_bias(const HfConfigJson& j, Config& c);

void hf_write_dimensions(const Config& c, nlohmann::ordered_json& out, const char* eps_key = "rms_norm_eps",
                         const char* act_key = "hidden_act", const char* act = "silu");
void hf_write_partial_rotary(const Config& c, nlohmann::ordered_json& out);
void hf_write_rope(const Config& c, nlohmann::ordered_json& out);
// "layer_types" (and sliding_window) for the per-layer kinds; nothing when no layer is local.
void hf_write_layer_types(const Config& c, nlohmann::ordered_json& out);
std::vector<uint8_t> hf_layer_sliding_flags(const Config& c);  // one flag per layer, resolved

// Name tables shared by families: Llama's block (pre-norms, q/k/v/o, gate/up/down, with their biases).
std::vector<HfTensorName> hf_llama_global_names();
std::vector<HfTensorName> hf_llama_layer_names();       // the two pre-norms + the projections
std::vector<HfTensorName> hf_llama_projection_names();  // q/k/v/o, gate/up/down, weights and biases
const HfTensorNaming& hf_llama_naming();                  // Llama's whole table (global + layer names)
// Gemma-2/3 and OLMo-2 soft-cap keys: null turns the cap off, an omitted key means `fallback`.
double hf_read_softcap(const HfConfigJson& j, const char* key, double fallback);
bool hf_is_rotary_buffer(const std::string& name);

// The first description field in which two configs differ ("" when none): what config.json could not express.
std::string hf_description_difference(const Config& a, const Config& b);

}  // namespace slmopt
