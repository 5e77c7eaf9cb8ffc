// The Llama-shaped Hugging Face families: LlamaForCausalLM, MistralForCausalLM and Qwen2ForCausalLM share one
// graph (RMSNorm, RoPE in rotate_half layout, grouped-query attention, SiLU-gated MLP) and one tensor naming;
// they differ in config.json defaults and biases: Llama's attention_bias adds q/k/v/o biases and mlp_bias the
// MLP biases, Qwen2 always has q/k/v biases (and nothing else), Mistral has none.
#include "hf_family.h"

#include "slmopt/core/error.h"
#include "slmopt/core/log.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt {
namespace {

using nlohmann::json;

// Defaults of transformers' LlamaConfig / MistralConfig / Qwen2Config where config.json omits a field.
struct Defaults {
  int64_t max_position;
  double rms_norm_eps;
};

void read_rope_scaling(const HfConfigJson& j, Config& c) {
  // transformers ≥ 5 folds rope_theta and the scaling into "rope_parameters"; older files use the two fields.
  const char* field = j.has("rope_scaling") ? "rope_scaling" : j.has("rope_parameters") ? "rope_parameters" : nullptr;
  if (field == nullptr) return;
  if (!j.at(field).is_object()) j.fail(field, "must be an object or null");
  const HfConfigJson rs(j.at(field), j.source(), std::string(field) + ".");
  if (std::string(field) == "rope_parameters" && !j.has("rope_theta"))
    c.rope_theta = rs.number_or("rope_theta", c.rope_theta);
  const std::string type = rs.has("rope_type") ? rs.string_or("rope_type", "") : rs.string_or("type", "");
  if (type.empty()) {
    if (std::string(field) == "rope_parameters") return;
    j.fail(field, "has no 'rope_type' (or 'type')");
  }
  if (type == "default") return;
  auto factor = [&]() {
    if (!rs.has("factor")) rs.fail("factor", "is missing");
    const double f = rs.number_or("factor", 1.0);
    if (!(f > 0)) rs.fail("factor", fmt::format("must be positive, got {}", f));
    return f;
  };
  if (type == "linear") {
    c.rope_scaling.type = RopeScalingType::Linear;
    c.rope_scaling.factor = factor();
  } else if (type == "llama3") {
    c.rope_scaling.type = RopeScalingType::Llama3;
    c.rope_scaling.factor = factor();
    for (const char* f : {"low_freq_factor", "high_freq_factor"})
      if (!rs.has(f)) rs.fail(f, "is missing");
    c.rope_scaling.low_freq_factor = rs.number_or("low_freq_factor", 1.0);
    c.rope_scaling.high_freq_factor = rs.number_or("high_freq_factor", 4.0);
    c.rope_scaling.original_max_position = rs.positive_integer("original_max_position_embeddings");
    if (!(c.rope_scaling.high_freq_factor > c.rope_scaling.low_freq_factor))
      rs.fail("high_freq_factor", "must be larger than low_freq_factor");
  } else {
    throw_error(ErrorKind::Unsupported, "{}: {} type '{}' is not supported (slmopt handles linear and llama3)",
                j.source(), field, type);
  }
}

void read_common(const HfConfigJson& j, Config& c, const Defaults& d) {
  if (j.has("quantization_config")) {
    const json& q = j.at("quantization_config");
    throw_error(ErrorKind::Unsupported, "{}: quantization_config ({}) marks a pre-quantized checkpoint; slmopt reads "
                "float checkpoints", j.source(),
                q.is_object() && q.contains("quant_method") ? q["quant_method"].dump() : q.dump());
  }
  const std::string act = j.string_or("hidden_act", "silu");
  if (act != "silu")
    throw_error(ErrorKind::Unsupported, "{}: hidden_act '{}' is not supported for {} (only silu)", j.source(), act,
                c.architecture);
  c.hidden_size = j.positive_integer("hidden_size");
  c.intermediate_size = j.positive_integer("intermediate_size");
  c.num_layers = j.positive_integer("num_hidden_layers");
  c.num_heads = j.positive_integer("num_attention_heads");
  c.num_kv_heads = j.positive_integer_or("num_key_value_heads", c.num_heads);
  if (c.num_heads % c.num_kv_heads != 0)
    j.fail("num_attention_heads", fmt::format("({}) is not a multiple of num_key_value_heads ({})", c.num_heads,
                                              c.num_kv_heads));
  if (!j.has("head_dim") && c.hidden_size % c.num_heads != 0)
    j.fail("head_dim", fmt::format("is missing and hidden_size ({}) is not a multiple of num_attention_heads ({})",
                                   c.hidden_size, c.num_heads));
  c.head_dim = j.positive_integer_or("head_dim", c.hidden_size / c.num_heads);
  if (c.head_dim % 2 != 0) j.fail("head_dim", fmt::format("({}) must be even for RoPE", c.head_dim));
  c.vocab_size = j.positive_integer("vocab_size");
  c.max_position = j.positive_integer_or("max_position_embeddings", d.max_position);
  c.norm_eps = j.number_or("rms_norm_eps", d.rms_norm_eps);
  if (!(c.norm_eps > 0 && c.norm_eps < 1)) j.fail("rms_norm_eps", fmt::format("({}) must be in (0, 1)", c.norm_eps));
  c.rope_theta = j.number_or("rope_theta", 10000.0);
  read_rope_scaling(j, c);
  if (!(c.rope_theta > 0)) j.fail("rope_theta", fmt::format("({}) must be positive", c.rope_theta));
  c.tie_word_embeddings = j.boolean_or("tie_word_embeddings", false);
}

void warn_sliding_window(const HfConfigJson& j, const Config& c, bool enabled) {
  if (!enabled || !j.has("sliding_window") || !j.at("sliding_window").is_number_integer()) return;
  const int64_t window = j.at("sliding_window").get<int64_t>();
  if (window > 0 && window < c.max_position)
    spdlog::warn("{}: sliding_window {} is ignored; slmopt attends over the whole context (identical for sequences "
                 "up to {} tokens)", j.source(), window, window);
}

void read_llama(const HfConfigJson& j, Config& c) {
  c.family = Family::Llama;
  read_common(j, c, {2048, 1e-6});
  c.attention_bias = c.attention_out_bias = j.boolean_or("attention_bias", false);
  c.mlp_bias = j.boolean_or("mlp_bias", false);
}

void read_mistral(const HfConfigJson& j, Config& c) {
  c.family = Family::Mistral;
  read_common(j, c, {4096 * 32, 1e-6});
  warn_sliding_window(j, c, true);
}

void read_qwen2(const HfConfigJson& j, Config& c) {
  c.family = Family::Qwen2;
  read_common(j, c, {32768, 1e-6});
  c.attention_bias = true;  // Qwen2Attention always has q/k/v biases and no o_proj bias
  warn_sliding_window(j, c, j.boolean_or("use_sliding_window", false));
}

json rope_scaling_json(const RopeScaling& rs) {
  switch (rs.type) {
    case RopeScalingType::None: return nullptr;
    case RopeScalingType::Linear:  // "type" too, for transformers releases older than "rope_type"
      return json{{"factor", rs.factor}, {"rope_type", "linear"}, {"type", "linear"}};
    case RopeScalingType::Llama3:
      return json{{"factor", rs.factor},
                  {"high_freq_factor", rs.high_freq_factor},
                  {"low_freq_factor", rs.low_freq_factor},
                  {"original_max_position_embeddings", rs.original_max_position},
                  {"rope_type", "llama3"}};
    case RopeScalingType::LongRope:
      throw_error(ErrorKind::Unsupported, "LongRoPE scaling cannot be written to a Llama-family config.json");
  }
  return nullptr;
}

void write_common(const Config& c, nlohmann::ordered_json& out) {
  out["hidden_size"] = c.hidden_size;
  out["intermediate_size"] = c.intermediate_size;
  out["num_hidden_layers"] = c.num_layers;
  out["num_attention_heads"] = c.num_heads;
  out["num_key_value_heads"] = c.num_kv_heads;
  out["head_dim"] = c.head_dim;
  out["hidden_act"] = "silu";
  out["max_position_embeddings"] = c.max_position;
  out["rms_norm_eps"] = c.norm_eps;
  out["rope_theta"] = c.rope_theta;
  out["rope_scaling"] = rope_scaling_json(c.rope_scaling);
  out["tie_word_embeddings"] = c.tie_word_embeddings;
  out["vocab_size"] = c.vocab_size;
}

// A config.json that cannot say what the IR holds would load with missing or randomly initialised biases.
// `qkv_bias` is whether the family's graph has q/k/v biases (always or never, for Mistral and Qwen2).
void refuse_biases(const Config& c, const char* architecture, bool qkv_bias) {
  auto refuse = [&](const char* what) {
    throw_error(ErrorKind::Unsupported, "{} config.json cannot express {} (model '{}')", architecture, what, c.name);
  };
  if (c.attention_bias && !qkv_bias) refuse("q/k/v biases");
  if (!c.attention_bias && qkv_bias) refuse("attention without q/k/v biases");
  if (c.attention_out_bias) refuse("an o_proj bias");
  if (c.mlp_bias) refuse("MLP biases");
}

void write_llama(const Config& c, nlohmann::ordered_json& out) {
  if (c.attention_bias != c.attention_out_bias)
    throw_error(ErrorKind::Unsupported, "LlamaForCausalLM config.json has one attention_bias for q/k/v and o_proj; "
                "model '{}' has {} without {}", c.name, c.attention_bias ? "q/k/v biases" : "an o_proj bias",
                c.attention_bias ? "an o_proj bias" : "q/k/v biases");
  write_common(c, out);
  out["attention_bias"] = c.attention_bias;
  out["mlp_bias"] = c.mlp_bias;
}

void write_mistral(const Config& c, nlohmann::ordered_json& out) {
  refuse_biases(c, "MistralForCausalLM", false);
  write_common(c, out);
  out["sliding_window"] = nullptr;
}

void write_qwen2(const Config& c, nlohmann::ordered_json& out) {
  refuse_biases(c, "Qwen2ForCausalLM", true);
  write_common(c, out);
  out["use_sliding_window"] = false;
}

std::vector<std::string> tensor_names(const Config& c) {
  std::vector<std::string> out = {names::kEmbedTokens, names::kFinalNorm};
  if (!c.tie_word_embeddings) out.push_back(names::kLmHead);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    for (const std::string& n : {names::attn_norm(l), names::ffn_norm(l), names::q_proj(l), names::k_proj(l),
                                 names::v_proj(l), names::o_proj(l), names::gate_proj(l), names::up_proj(l),
                                 names::down_proj(l)})
      out.push_back(n);
    if (c.attention_bias)
      for (const std::string& n : {names::q_bias(l), names::k_bias(l), names::v_bias(l)}) out.push_back(n);
    if (c.attention_out_bias) out.push_back(names::o_bias(l));
    if (c.mlp_bias)
      for (const char* proj : {"gate_proj", "up_proj", "down_proj"})
        out.push_back(names::layer_prefix(l) + "mlp." + proj + ".bias");
  }
  return out;
}

bool is_buffer(const std::string& name) {
  const std::string suffix = "rotary_emb.inv_freq";
  return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

extern const HfFamily kHfLlamaFamily = {Family::Llama, {"LlamaForCausalLM"}, "llama", read_llama, write_llama,
                                        tensor_names, is_buffer};
extern const HfFamily kHfMistralFamily = {Family::Mistral, {"MistralForCausalLM"}, "mistral", read_mistral,
                                          write_mistral, tensor_names, is_buffer};
extern const HfFamily kHfQwen2Family = {Family::Qwen2, {"Qwen2ForCausalLM"}, "qwen2", read_qwen2, write_qwen2,
                                        tensor_names, is_buffer};

}  // namespace slmopt
