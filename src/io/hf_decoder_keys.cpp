// The config.json keys most Hugging Face decoder classes share (dimensions, RoPE and its scaling, partial rotary,
// per-layer attention kinds, attention biases), read with transformers' semantics, and the Llama tensor-name rows
// other families build on. Family files (families/<name>.cpp) call these and add only what differs.
#include <algorithm>
#include <cmath>

#include "hf_family.h"
#include "slmopt/core/error.h"
#include "slmopt/ir/config_limits.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt {

using nlohmann::json;

void hf_require_float_checkpoint(const HfConfigJson& j) {
  if (!j.has("quantization_config")) return;
  const json& q = j.at("quantization_config");
  throw_error(ErrorKind::Unsupported, "{}: quantization_config ({}) marks a pre-quantized checkpoint; slmopt reads "
              "float checkpoints", j.source(),
              q.is_object() && q.contains("quant_method") ? q["quant_method"].dump() : q.dump());
}

void hf_require_activation(const HfConfigJson& j, const char* key, std::vector<std::string> allowed) {
  const std::string act = j.string_or(key, allowed.front());
  if (std::find(allowed.begin(), allowed.end(), act) != allowed.end()) return;
  std::string list;
  for (const std::string& a : allowed) list += (list.empty() ? "" : ", ") + a;
  j.unsupported(key, fmt::format("'{}' is not supported for this architecture (slmopt runs {})", act, list));
}

void hf_read_dimensions(const HfConfigJson& j, Config& c, const HfDefaults& d) {
  hf_require_float_checkpoint(j);
  c.hidden_size = j.positive_integer("hidden_size");
  c.intermediate_size = j.positive_integer("intermediate_size");
  c.num_layers = j.positive_integer("num_hidden_layers");
  c.num_heads = j.positive_integer("num_attention_heads");
  c.num_kv_heads = j.positive_integer_or("num_key_value_heads", c.num_heads);
  if (c.num_heads % c.num_kv_heads != 0)
    j.fail("num_attention_heads", fmt::format("({}) is not a multiple of num_key_value_heads ({})", c.num_heads,
                                              c.num_kv_heads));
  if (!j.has("head_dim") && d.head_dim == 0 && c.hidden_size % c.num_heads != 0)
    j.fail("head_dim", fmt::format("is missing and hidden_size ({}) is not a multiple of num_attention_heads ({})",
                                   c.hidden_size, c.num_heads));
  c.head_dim = j.positive_integer_or("head_dim", d.head_dim > 0 ? d.head_dim : c.hidden_size / c.num_heads);
  if (c.head_dim % 2 != 0) j.fail("head_dim", fmt::format("({}) must be even for RoPE", c.head_dim));
  c.vocab_size = j.positive_integer("vocab_size");
  c.max_position = j.positive_integer_or("max_position_embeddings", d.max_position);
  c.norm_eps = j.number_or(d.eps_key, d.norm_eps);
  if (!(c.norm_eps > 0 && c.norm_eps < 1)) j.fail(d.eps_key, fmt::format("({}) must be in (0, 1)", c.norm_eps));
  c.tie_word_embeddings = j.boolean_or("tie_word_embeddings", d.tie_word_embeddings);
  check_config_sizes(c, j.source());  // before the family code sizes per-layer lists by num_hidden_layers
}

void hf_read_partial_rotary(const HfConfigJson& j, Config& c, double fallback) {
  double factor = fallback;
  const char* field = "partial_rotary_factor";
  if (j.has(field)) {
    factor = j.number_or(field, fallback);
  } else if (j.has("rope_parameters") && j.at("rope_parameters").is_object()) {
    factor = HfConfigJson(j.at("rope_parameters"), j.source(), "rope_parameters.").number_or(field, fallback);
  }
  if (!(factor > 0 && factor <= 1)) j.fail(field, fmt::format("({}) must be in (0, 1]", factor));
  // transformers: dim = int(head_dim * partial_rotary_factor), a truncation.
  const auto dims = static_cast<int64_t>(static_cast<double>(c.head_dim) * factor);
  if (dims <= 0 || dims % 2 != 0)
    j.fail(field, fmt::format("({}) gives {} rotary dimensions of head_dim {}; they must be even and positive", factor,
                              dims, c.head_dim));
  c.rotary_dim = dims == c.head_dim ? 0 : dims;
}

void hf_read_rope(const HfConfigJson& j, Config& c, double default_theta, int64_t longrope_original_default) {
  c.rope_theta = j.number_or("rope_theta", default_theta);
  // transformers ≥ 5 folds rope_theta and the scaling into "rope_parameters"; older files use the two fields.
  const char* field = j.has("rope_scaling") ? "rope_scaling" : j.has("rope_parameters") ? "rope_parameters" : nullptr;
  if (field != nullptr) {
    if (!j.at(field).is_object()) j.fail(field, "must be an object or null");
    const HfConfigJson rs(j.at(field), j.source(), std::string(field) + ".");
    const bool parameters = std::string(field) == "rope_parameters";
    if (parameters && !j.has("rope_theta")) c.rope_theta = rs.number_or("rope_theta", c.rope_theta);
    const std::string type = rs.has("rope_type") ? rs.string_or("rope_type", "") : rs.string_or("type", "");
    if (type.empty() && !parameters) j.fail(field, "has no 'rope_type' (or 'type')");
    auto factor = [&]() {
      if (!rs.has("factor")) rs.fail("factor", "is missing");
      return rs.positive_number_or("factor", 1.0);
    };
    RopeScaling& s = c.rope_scaling;
    if (type.empty() || type == "default") {
      // plain RoPE
    } else if (type == "linear") {
      s.type = RopeScalingType::Linear;
      s.factor = factor();
    } else if (type == "llama3") {
      s.type = RopeScalingType::Llama3;
      s.factor = factor();
      for (const char* f : {"low_freq_factor", "high_freq_factor"})
        if (!rs.has(f)) rs.fail(f, "is missing");
      s.low_freq_factor = rs.number_or("low_freq_factor", 1.0);
      s.high_freq_factor = rs.number_or("high_freq_factor", 4.0);
      s.original_max_position = rs.positive_integer("original_max_position_embeddings");
      if (!(s.high_freq_factor > s.low_freq_factor)) rs.fail("high_freq_factor", "must be larger than low_freq_factor");
    } else if (type == "longrope" || type == "su") {
      // Phi-3's LongRoPE ("su" is its first name). transformers (_compute_longrope_parameters): with an
      // original_max_position_embeddings the factor is max_position / original (rope_scaling.factor ignored),
      // and attention_factor, when absent, is sqrt(1 + ln(factor) / ln(original)) for factors above 1.
      s.type = RopeScalingType::LongRope;
      s.short_factor = rs.numbers("short_factor");
      s.long_factor = rs.numbers("long_factor");
      const size_t half = static_cast<size_t>(c.rotary_dims() / 2);
      for (const auto& [name, v] : {std::pair{"short_factor", &s.short_factor}, {"long_factor", &s.long_factor}}) {
        if (v->size() != half)
          rs.fail(name, fmt::format("has {} entries; rotary dimensions / 2 = {}", v->size(), half));
        for (double x : *v)
          if (!(x > 0)) rs.fail(name, fmt::format("entries must be positive, has {}", x));
      }
      int64_t original = 0;
      if (j.has("original_max_position_embeddings")) original = j.positive_integer("original_max_position_embeddings");
      else if (rs.has("original_max_position_embeddings")) original = rs.positive_integer("original_max_position_embeddings");
      else original = longrope_original_default;
      if (original > 0) {
        s.factor = static_cast<double>(c.max_position) / static_cast<double>(original);
      } else {
        original = c.max_position;
        s.factor = factor();
      }
      s.original_max_position = original;
      s.attention_factor = rs.has("attention_factor")
                               ? rs.positive_number_or("attention_factor", 1.0)
                               : s.factor <= 1.0 ? 1.0
                                                 : std::sqrt(1.0 + std::log(s.factor) /
                                                                       std::log(static_cast<double>(original)));
    } else {
      throw_error(ErrorKind::Unsupported, "{}: {} type '{}' is not supported (slmopt handles linear, llama3 and "
                  "longrope)", j.source(), field, type);
    }
  }
  if (!(c.rope_theta > 0)) j.fail("rope_theta", fmt::format("({}) must be positive", c.rope_theta));
}

void hf_set_sliding(const HfConfigJson& j, Config& c, int64_t window, std::vector<uint8_t> flags) {
  if (j.has("layer_types")) {
    const json& types = j.at("layer_types");
    if (!types.is_array() || static_cast<int64_t>(types.size()) != c.num_layers)
      j.fail("layer_types", fmt::format("must list one attention kind per layer ({})", c.num_layers));
    flags.clear();
    for (const json& t : types) {
      const std::string kind = t.is_string() ? t.get<std::string>() : t.dump();
      if (kind == "full_attention") flags.push_back(0);
      else if (kind == "sliding_attention") flags.push_back(1);
      else j.unsupported("layer_types", fmt::format("entry '{}' is not supported (full_attention, sliding_attention)",
                                                    kind));
    }
  }
  c.sliding_window = 0;
  c.layer_sliding.clear();
  const auto local = std::count(flags.begin(), flags.end(), uint8_t{1});
  if (window <= 0 || local == 0) return;  // transformers: a local layer without a window attends everything
  c.sliding_window = window;
  if (local != static_cast<int64_t>(flags.size())) c.layer_sliding = std::move(flags);
}

void hf_read_qwen_sliding(const HfConfigJson& j, Config& c) {
  const bool enabled = j.boolean_or("use_sliding_window", false);
  const int64_t window = enabled ? j.positive_integer_or("sliding_window", 4096) : 0;
  const bool zero = j.has("max_window_layers") && j.at("max_window_layers") == 0;  // every layer local
  const int64_t first_local = zero ? 0 : j.positive_integer_or("max_window_layers", 28);
  std::vector<uint8_t> flags;
  for (int64_t l = 0; l < c.num_layers; ++l) flags.push_back(l >= first_local ? 1 : 0);
  hf_set_sliding(j, c, window, std::move(flags));
}

void hf_write_qwen_sliding(const Config& c, nlohmann::ordered_json& out) {
  out["use_sliding_window"] = c.sliding_window > 0;
  if (c.sliding_window == 0) {
    out["sliding_window"] = nullptr;
    return;
  }
  const std::vector<uint8_t> flags = hf_layer_sliding_flags(c);
  out["sliding_window"] = c.sliding_window;
  // Older readers know only max_window_layers (the first local layer); layer_types says the same to newer ones.
  out["max_window_layers"] = std::find(flags.begin(), flags.end(), uint8_t{1}) - flags.begin();
  hf_write_layer_types(c, out);
}

double hf_read_softcap(const HfConfigJson& j, const char* key, double fallback) {
  if (!j.present(key)) return fallback;
  const double cap = j.number_or(key, 0.0);
  if (cap < 0) j.fail(key, fmt::format("must not be negative, got {}", cap));
  return cap;
}

void hf_read_attention_bias(const HfConfigJson& j, Config& c) {
  c.attention_bias = c.attention_out_bias = j.boolean_or("attention_bias", false);
}

void hf_write_dimensions(const Config& c, nlohmann::ordered_json& out, const char* eps_key, const char* act_key,
                         const char* act) {
  out["hidden_size"] = c.hidden_size;
  out["intermediate_size"] = c.intermediate_size;
  out["num_hidden_layers"] = c.num_layers;
  out["num_attention_heads"] = c.num_heads;
  out["num_key_value_heads"] = c.num_kv_heads;
  out["head_dim"] = c.head_dim;
  out[act_key] = act;
  out["max_position_embeddings"] = c.max_position;
  out[eps_key] = c.norm_eps;
  out["tie_word_embeddings"] = c.tie_word_embeddings;
  out["vocab_size"] = c.vocab_size;
}

void hf_write_partial_rotary(const Config& c, nlohmann::ordered_json& out) {
  // The factor whose truncated product with head_dim gives rotary_dim back (r / head_dim can land an ulp low).
  double factor = static_cast<double>(c.rotary_dims()) / static_cast<double>(c.head_dim);
  while (static_cast<int64_t>(static_cast<double>(c.head_dim) * factor) < c.rotary_dims())
    factor = std::nextafter(factor, 2.0);
  out["partial_rotary_factor"] = factor;
}

void hf_write_rope(const Config& c, nlohmann::ordered_json& out) {
  out["rope_theta"] = c.rope_theta;
  const RopeScaling& s = c.rope_scaling;
  switch (s.type) {
    case RopeScalingType::None: out["rope_scaling"] = nullptr; break;
    case RopeScalingType::Linear:  // "type" too, for transformers releases older than "rope_type"
      out["rope_scaling"] = json{{"factor", s.factor}, {"rope_type", "linear"}, {"type", "linear"}};
      break;
    case RopeScalingType::Llama3:
      out["rope_scaling"] = json{{"factor", s.factor},
                                 {"high_freq_factor", s.high_freq_factor},
                                 {"low_freq_factor", s.low_freq_factor},
                                 {"original_max_position_embeddings", s.original_max_position},
                                 {"rope_type", "llama3"}};
      break;
    case RopeScalingType::LongRope:
      // The factor is implied (max_position / original); attention_factor is written so no reader recomputes it.
      out["original_max_position_embeddings"] = s.original_max_position;
      out["rope_scaling"] = json{{"attention_factor", s.attention_factor},
                                 {"long_factor", s.long_factor},
                                 {"original_max_position_embeddings", s.original_max_position},
                                 {"rope_type", "longrope"},
                                 {"short_factor", s.short_factor},
                                 {"type", "longrope"}};
      break;
  }
}

std::vector<uint8_t> hf_layer_sliding_flags(const Config& c) {
  std::vector<uint8_t> flags;
  for (int64_t l = 0; l < c.num_layers; ++l) flags.push_back(c.layer_is_sliding(l) ? 1 : 0);
  return flags;
}

void hf_write_layer_types(const Config& c, nlohmann::ordered_json& out) {
  json types = json::array();
  for (uint8_t local : hf_layer_sliding_flags(c)) types.push_back(local ? "sliding_attention" : "full_attention");
  out["layer_types"] = types;
}

namespace {
std::string layer_suffix(const std::string& full) { return full.substr(names::layer_prefix(0).size()); }
}  // namespace

std::vector<HfTensorName> hf_llama_global_names() {
  return {{names::kEmbedTokens, {names::kEmbedTokens}},
          {names::kFinalNorm, {names::kFinalNorm}},
          {names::kLmHead, {names::kLmHead}}};
}

std::vector<HfTensorName> hf_llama_projection_names() {
  std::vector<HfTensorName> rows;
  for (auto role : {names::q_proj, names::k_proj, names::v_proj, names::o_proj, names::q_bias, names::k_bias,
                    names::v_bias, names::o_bias, names::gate_proj, names::up_proj, names::down_proj, names::gate_bias,
                    names::up_bias, names::down_bias}) {
    const std::string s = layer_suffix(role(0));
    rows.push_back({s, {s}});
  }
  return rows;
}

const HfTensorNaming& hf_llama_naming() {
  static const HfTensorNaming naming = {hf_llama_global_names(), hf_llama_layer_names()};
  return naming;
}

std::vector<HfTensorName> hf_llama_layer_names() {
  std::vector<HfTensorName> rows;
  for (auto role : {names::attn_norm, names::ffn_norm}) {
    const std::string s = layer_suffix(role(0));
    rows.push_back({s, {s}});
  }
  for (HfTensorName& row : hf_llama_projection_names()) rows.push_back(std::move(row));
  return rows;
}

bool hf_is_rotary_buffer(const std::string& name) {
  const std::string suffix = "rotary_emb.inv_freq";
  return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string hf_description_difference(const Config& a, const Config& b) {
  const RopeScaling &x = a.rope_scaling, &y = b.rope_scaling;
  const bool llama3 = x.type == RopeScalingType::Llama3, longrope = x.type == RopeScalingType::LongRope;
  auto per_layer = [](const Config& c, auto f) {
    std::vector<double> v;
    for (int64_t l = 0; l < c.num_layers; ++l) v.push_back(f(c, l));
    return v;
  };
  auto no_rope = [](const Config& c, int64_t l) { return c.layer_uses_rope(l) ? 0.0 : 1.0; };
  auto theta = [](const Config& c, int64_t l) { return c.layer_rope_theta(l); };
  auto scaled = [](const Config& c, int64_t l) { return c.layer_rope_scaled(l) ? 1.0 : 0.0; };
  const std::pair<const char*, bool> fields[] = {
      {"hidden_size", a.hidden_size == b.hidden_size},
      {"intermediate_size", a.intermediate_size == b.intermediate_size},
      {"num_layers", a.num_layers == b.num_layers},
      {"num_heads", a.num_heads == b.num_heads},
      {"num_kv_heads", a.num_kv_heads == b.num_kv_heads},
      {"head_dim", a.head_dim == b.head_dim},
      {"vocab_size", a.vocab_size == b.vocab_size},
      {"max_position", a.max_position == b.max_position},
      {"norm_eps", a.norm_eps == b.norm_eps},
      {"rope_theta", a.rope_theta == b.rope_theta},
      {"rope_scaling type", x.type == y.type},
      {"rope_scaling factor", longrope || x.type == RopeScalingType::None || x.factor == y.factor},
      {"rope_scaling low/high_freq_factor",
       !llama3 || (x.low_freq_factor == y.low_freq_factor && x.high_freq_factor == y.high_freq_factor)},
      {"rope_scaling original_max_position", !(llama3 || longrope) || x.original_max_position == y.original_max_position},
      {"rope_scaling short/long factors", !longrope || (x.short_factor == y.short_factor && x.long_factor == y.long_factor)},
      {"rope_scaling attention_factor", !longrope || x.attention_factor == y.attention_factor},
      {"tie_word_embeddings", a.tie_word_embeddings == b.tie_word_embeddings},
      {"q/k/v biases", a.attention_bias == b.attention_bias},
      {"an o_proj bias", a.attention_out_bias == b.attention_out_bias},
      {"MLP biases", a.mlp_bias == b.mlp_bias},
      {"norm kind", a.norm_kind == b.norm_kind},
      {"norm biases", a.norm_bias == b.norm_bias},
      {"(1 + w) norms", a.norm_unit_offset == b.norm_unit_offset},
      {"norm placement", a.norm_placement == b.norm_placement},
      {"residual layout", a.residual_layout == b.residual_layout},
      {"MLP kind", a.mlp_kind == b.mlp_kind},
      {"q/k norm", a.qk_norm == b.qk_norm},
      {"position kind", a.position_kind == b.position_kind},
      {"rotary dimensions", a.rotary_dims() == b.rotary_dims()},
      {"attention scale", a.attention_scale() == b.attention_scale()},
      {"attention soft-cap", a.attn_softcap == b.attn_softcap},
      {"sliding window", hf_layer_sliding_flags(a) == hf_layer_sliding_flags(b) &&
                             (a.sliding_window == b.sliding_window || a.sliding_window == 0 ||
                              hf_layer_sliding_flags(a) == std::vector<uint8_t>(static_cast<size_t>(a.num_layers), 0))},
      {"NoPE layers", per_layer(a, no_rope) == per_layer(b, no_rope)},
      {"per-layer RoPE base", per_layer(a, theta) == per_layer(b, theta)},
      {"per-layer RoPE scaling", per_layer(a, scaled) == per_layer(b, scaled)},
      {"embedding scale", a.embedding_scale == b.embedding_scale},
      {"residual scale", a.residual_scale == b.residual_scale},
      {"logit scale", a.logit_scale == b.logit_scale},
      {"final logit soft-cap", a.final_logit_softcap == b.final_logit_softcap},
      {"an lm_head bias", a.lm_head_bias == b.lm_head_bias},
  };
  for (const auto& [name, same] : fields)
    if (!same) return name;
  return "";
}

}  // namespace slmopt
