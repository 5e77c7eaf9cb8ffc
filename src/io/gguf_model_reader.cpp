// GGUF → Model (see io/gguf.h), for every architecture of the registry (gguf_arch.h): the block shape comes from
// the architecture's row, the sizes and variants from its keys (as llama.cpp reads them, defaults included), the
// tensors are renamed to the canonical names (reversed dims are already undone by the container reader), fused
// tensors are split, Q/K rows of "normal"-RoPE files regrouped back into the rotate_half order, Gemma's stored
// 1 + w norms turned back into w, and the Vocab rebuilt.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "gguf_arch.h"
#include "gguf_tokenizer.h"
#include "slmopt/core/error.h"
#include "slmopt/core/log.h"  // spdlog
#include "slmopt/io/gguf.h"
#include "slmopt/io/gguf_format.h"
#include "slmopt/ir/config_limits.h"
#include "slmopt/ir/decoder_tensors.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt {
namespace {

using namespace gguf_arch;

// A count llama.cpp allows per layer: a scalar for all layers or an array with one integer per layer.
std::optional<std::vector<int64_t>> read_per_layer(const GgufFile& file, const std::string& key, int64_t n_layers) {
  const GgufValue* v = file.metadata().find(key);
  if (!v) return std::nullopt;
  std::vector<int64_t> values;
  if (v->type() == GgufType::Array) {
    const auto& elements = *v->to_array();
    if (static_cast<int64_t>(elements.size()) != n_layers)
      throw_error(ErrorKind::BadInput, "{}: key '{}' has {} entries for {} layers", file.source(), key,
                  elements.size(), n_layers);
    for (const auto& e : elements) {
      const auto i = e.to_int();
      if (!i) throw_error(ErrorKind::BadInput, "{}: key '{}' must hold integers", file.source(), key);
      values.push_back(*i);
    }
  } else {
    const auto i = v->to_int();
    if (!i) throw_error(ErrorKind::BadInput, "{}: key '{}' must hold an integer", file.source(), key);
    values.assign(static_cast<size_t>(n_layers), *i);
  }
  for (auto x : values)
    if (x <= 0 || x > (int64_t{1} << 31))
      throw_error(ErrorKind::BadInput, "{}: key '{}' has the value {}", file.source(), key, x);
  return values;
}

// Per-layer flags from a bool or integer array (llama.cpp accepts both for the sliding-window pattern).
std::vector<uint8_t> read_flags(const GgufFile& file, const std::string& key, int64_t n_layers) {
  const GgufValue* v = file.metadata().find(key);
  const auto* elements = v ? v->to_array() : nullptr;
  if (!elements || static_cast<int64_t>(elements->size()) != n_layers)
    throw_error(ErrorKind::BadInput, "{}: key '{}' must be an array with one entry per layer ({})", file.source(), key,
                n_layers);
  std::vector<uint8_t> out;
  for (const auto& e : *elements) {
    std::optional<int64_t> i = e.type() == GgufType::Bool ? std::optional<int64_t>(e.to_bool().value_or(false)) : e.to_int();
    if (!i) throw_error(ErrorKind::BadInput, "{}: key '{}' must hold booleans or integers", file.source(), key);
    out.push_back(*i != 0);
  }
  return out;
}

// Sets the uniform value (the largest) and, when layers differ, the per-layer list.
void set_counts(const std::vector<int64_t>& values, int64_t& uniform, std::vector<int64_t>& per_layer) {
  uniform = *std::max_element(values.begin(), values.end());
  const bool same = std::all_of(values.begin(), values.end(), [&](int64_t x) { return x == values.front(); });
  per_layer = same ? std::vector<int64_t>{} : values;
}

bool all_set(const std::vector<uint8_t>& flags) {
  return std::all_of(flags.begin(), flags.end(), [](uint8_t f) { return f != 0; });
}
bool none_set(const std::vector<uint8_t>& flags) {
  return std::none_of(flags.begin(), flags.end(), [](uint8_t f) { return f != 0; });
}

void read_family(const GgufFile& file, const Architecture& arch, Config& c) {
  c.family = std::string(arch.family);
  c.architecture = std::string(arch.hf_class);
  // slmopt's own key names the source family when this architecture hosts it: Mistral in a "llama" file, any
  // llama-shaped family in a "deci" file.
  if (auto hf = file.get_string(kHfArchitecture)) {
    const auto family = family_of_hf_class(*hf);
    if (family && (&architecture_of_family(*family) == &arch || arch.per_layer_widths)) {
      c.family = *family;
      c.architecture = *hf;
    }
  }
}

void read_rope(const GgufFile& file, const Architecture& arch, Config& c) {
  const std::string& src = file.source();
  const std::string_view a = arch.gguf_name;
  if (auto rope_dims = file.get_int(arch_key(a, "rope.dimension_count")); rope_dims && *rope_dims != c.head_dim) {
    if (!arch.partial_rotary || *rope_dims <= 0 || *rope_dims > c.head_dim || *rope_dims % 2 != 0)
      throw_error(ErrorKind::Unsupported, "{}: key '{}' = {} (partial rotary) for head_dim {} is not supported", src,
                  arch_key(a, "rope.dimension_count"), *rope_dims, c.head_dim);
    c.rotary_dim = *rope_dims;
  }
  c.rope_theta = file.get_float(arch_key(a, "rope.freq_base")).value_or(10000.0);

  const std::string scaling = file.get_string(arch_key(a, "rope.scaling.type")).value_or("none");
  if (scaling == "longrope") {
    if (!arch.longrope)
      throw_error(ErrorKind::Unsupported, "{}: key '{}' = longrope is not supported for {}", src,
                  arch_key(a, "rope.scaling.type"), a);
    RopeScaling& r = c.rope_scaling;
    r.type = RopeScalingType::LongRope;
    r.original_max_position = file.get_int(arch_key(a, "rope.scaling.original_context_length")).value_or(c.max_position);
    r.attention_factor = file.get_float(arch_key(a, "rope.scaling.attn_factor")).value_or(1.0);
    r.factor = file.get_float(kRopeLongRopeFactor)
                   .value_or(static_cast<double>(c.max_position) / static_cast<double>(r.original_max_position));
    return;  // the factors come from the tensors
  }
  double linear_factor = 1.0;
  if (scaling == "linear") {
    linear_factor = file.get_float(arch_key(a, "rope.scaling.factor")).value_or(1.0);
  } else if (scaling == "none") {
    linear_factor = file.get_float(arch_key(a, "rope.scale_linear")).value_or(1.0);  // the older key
  } else {
    throw_error(ErrorKind::Unsupported, "{}: key '{}' = '{}' is not supported (none, linear, longrope; Llama-3 "
                "scaling as a rope_freqs tensor)", src, arch_key(a, "rope.scaling.type"), scaling);
  }
  if (linear_factor > 0 && linear_factor != 1.0) {
    c.rope_scaling.type = RopeScalingType::Linear;
    c.rope_scaling.factor = linear_factor;
  }
}

// Sliding windows, soft-caps, multipliers and NoPE layers, each as llama.cpp's graph for `arch` reads them.
void read_variants(const GgufFile& file, const Architecture& arch, Config& c) {
  const std::string_view a = arch.gguf_name;
  const std::string window_key = arch_key(a, "attention.sliding_window");
  const std::string pattern_key = arch_key(a, "attention.sliding_window_pattern");
  c.sliding_window = file.get_int(window_key).value_or(arch.swa_default_window);
  if (c.sliding_window < 0) throw_error(ErrorKind::BadInput, "{}: key '{}' is negative", file.source(), window_key);
  if (c.sliding_window > 0 && arch.swa == Swa::Pattern) {
    std::vector<uint8_t> local;
    if (const GgufValue* v = file.metadata().find(pattern_key); v && v->type() == GgufType::Array) {
      local = read_flags(file, pattern_key, c.num_layers);
    } else {
      Architecture with_pattern = arch;
      if (auto n = file.get_int(pattern_key)) with_pattern.swa_default_pattern = static_cast<uint32_t>(*n);
      local = default_swa_layers(with_pattern, c.num_layers);
    }
    if (none_set(local)) {
      c.sliding_window = 0;
    } else if (!all_set(local)) {
      c.layer_sliding = std::move(local);
    }
    if (c.sliding_window > 0 && arch.swa_rope_base) {
      // gemma2 defaults the local base to the global one, gemma3 and olmo2 to 10000.
      const double fallback = arch.swa_rope_scaled ? c.rope_theta : 10000.0;
      c.rope_local_theta = file.get_float(arch_key(a, "rope.freq_base_swa")).value_or(fallback);
      if (arch.swa_rope_scaled && c.rope_local_theta == c.rope_theta) c.rope_local_theta = 0;
    }
  }
  if (arch.attn_softcap) c.attn_softcap = file.get_float(arch_key(a, "attn_logit_softcapping")).value_or(50.0);
  if (arch.final_softcap)
    c.final_logit_softcap =
        file.get_float(arch_key(a, "final_logit_softcapping")).value_or(arch.final_softcap_always ? 30.0 : 0.0);
  if (arch.embedding_scale_sqrt_hidden) c.embedding_scale = std::sqrt(static_cast<double>(c.hidden_size));
  if (arch.multipliers) {
    const double logit_scale = file.require_float(arch_key(a, "logit_scale"));
    if (!(logit_scale > 0))
      throw_error(ErrorKind::BadInput, "{}: key '{}' must be positive", file.source(), arch_key(a, "logit_scale"));
    c.logit_scale = 1.0 / logit_scale;
    c.embedding_scale = file.get_float(arch_key(a, "embedding_scale")).value_or(1.0);
    c.residual_scale = file.get_float(arch_key(a, "residual_scale")).value_or(1.0);
    c.attn_scale = file.get_float(arch_key(a, "attention.scale")).value_or(0.0);
  } else if (arch.attn_scale == AttnScale::Gemma) {
    const double scale = llama_cpp_attention_scale(arch, c);
    if (std::abs(scale * std::sqrt(static_cast<double>(c.head_dim)) - 1.0) > 1e-12) c.attn_scale = scale;
  }
  if (arch.no_rope_step > 0) {
    std::vector<uint8_t> no_rope = no_rope_layers(arch, c.num_layers);
    if (!none_set(no_rope)) c.layer_no_rope = std::move(no_rope);
  }
}

Config read_config(const GgufFile& file, const Architecture& arch) {
  const std::string& src = file.source();
  const std::string_view a = arch.gguf_name;
  Config c;
  read_family(file, arch, c);
  c.name = file.get_string(kName).value_or(std::filesystem::path(src).stem().string());
  c.norm_kind = arch.norm_kind;
  c.norm_bias = arch.norm_bias;
  c.norm_unit_offset = arch.norm_unit_offset;
  c.norm_placement = arch.norm_placement;
  c.residual_layout = arch.residual;
  c.mlp_kind = arch.mlp;
  c.qk_norm = arch.qk_norm;
  c.position_kind = arch.position;

  auto positive = [&](std::string_view suffix) {
    const std::string key = arch_key(a, suffix);
    const int64_t v = file.require_int(key);
    if (v <= 0 || v > (int64_t{1} << 40)) throw_error(ErrorKind::BadInput, "{}: key '{}' has the value {}", src, key, v);
    return v;
  };
  c.hidden_size = positive("embedding_length");
  c.num_layers = positive("block_count");
  c.max_position = positive("context_length");
  if (c.num_layers > 100000) throw_error(ErrorKind::BadInput, "{}: {} layers is absurd", src, c.num_layers);

  const auto heads = read_per_layer(file, arch_key(a, "attention.head_count"), c.num_layers);
  if (!heads) throw_error(ErrorKind::BadInput, "{}: required key '{}' is missing", src, arch_key(a, "attention.head_count"));
  const auto kv_heads = read_per_layer(file, arch_key(a, "attention.head_count_kv"), c.num_layers).value_or(*heads);
  const auto ffn = read_per_layer(file, arch_key(a, "feed_forward_length"), c.num_layers);
  if (!ffn) throw_error(ErrorKind::BadInput, "{}: required key '{}' is missing", src, arch_key(a, "feed_forward_length"));
  set_counts(*heads, c.num_heads, c.layer_num_heads);
  set_counts(kv_heads, c.num_kv_heads, c.layer_num_kv_heads);
  set_counts(*ffn, c.intermediate_size, c.layer_intermediate_size);

  if (auto key_length = file.get_int(arch_key(a, "attention.key_length"))) {
    // Checked here, naming the key: heads × head_dim of 2^62 used to overflow before validate saw it.
    if (*key_length <= 0 || *key_length > kMaxHeadDim)
      throw_error(ErrorKind::BadInput, "{}: key '{}' has the value {}", src, arch_key(a, "attention.key_length"),
                  *key_length);
    c.head_dim = *key_length;
  } else {
    if (c.hidden_size % heads->front() != 0)
      throw_error(ErrorKind::BadInput, "{}: embedding_length {} is not a multiple of head_count {}", src,
                  c.hidden_size, heads->front());
    c.head_dim = c.hidden_size / heads->front();
  }
  if (auto value_length = file.get_int(arch_key(a, "attention.value_length")); value_length && *value_length != c.head_dim)
    throw_error(ErrorKind::Unsupported, "{}: value_length {} differs from key_length {}", src, *value_length,
                c.head_dim);
  c.norm_eps = file.require_float(arch_key(a, c.norm_kind == NormKind::LayerNorm ? "attention.layer_norm_epsilon"
                                                                                 : "attention.layer_norm_rms_epsilon"));
  check_config_sizes(c, src);
  if (c.position_kind == PositionKind::Rope) read_rope(file, arch, c);
  read_variants(file, arch, c);
  return c;
}

void read_llama3_scaling(const GgufFile& file, const GgufTensorInfo& info, Config& c) {
  const std::string& src = file.source();
  if (c.rope_scaling.type != RopeScalingType::None)
    throw_error(ErrorKind::Unsupported, "{}: both linear RoPE scaling and a rope_freqs tensor", src);
  const std::vector<float> factors = file.view(info).to_f32();
  if (static_cast<int64_t>(factors.size()) != c.head_dim / 2)
    throw_error(ErrorKind::BadInput, "{}: tensor 'rope_freqs.weight' has {} values, expected head_dim/2 = {}", src,
                factors.size(), c.head_dim / 2);
  if (auto factor = file.get_float(kRopeLlama3Factor)) {
    c.rope_scaling.type = RopeScalingType::Llama3;
    c.rope_scaling.factor = *factor;
    c.rope_scaling.low_freq_factor = file.require_float(kRopeLlama3LowFreqFactor);
    c.rope_scaling.high_freq_factor = file.require_float(kRopeLlama3HighFreqFactor);
    c.rope_scaling.original_max_position = file.require_int(kRopeLlama3OriginalContext);
  } else {
    c.rope_scaling = fit_llama3_rope_scaling(factors, c);
  }
  // llama.cpp uses the tensor; slmopt's forward pass recomputes from the parameters. Say so if they disagree.
  const std::vector<float> expected = llama3_rope_factors(c);
  for (size_t i = 0; i < factors.size(); ++i)
    if (std::abs(expected[i] - factors[i]) > 1e-3f * std::abs(factors[i])) {
      spdlog::warn("{}: rope_freqs.weight[{}] = {} but the Llama-3 parameters give {}", src, i, factors[i],
                   expected[i]);
      break;
    }
}

std::vector<double> read_factors(const GgufFile& file, const GgufTensorInfo& info, const Config& c) {
  const std::vector<float> values = file.view(info).to_f32();
  if (static_cast<int64_t>(values.size()) != c.rotary_dims() / 2)
    throw_error(ErrorKind::BadInput, "{}: tensor '{}' has {} values, expected rotary dims / 2 = {}", file.source(),
                info.name, values.size(), c.rotary_dims() / 2);
  return {values.begin(), values.end()};
}

// Row counts of a fused tensor's parts, from the config.
std::vector<int64_t> part_rows(const std::vector<std::string>& parts, const Config& c, int64_t layer) {
  std::vector<int64_t> rows;
  for (const auto& part : parts) {
    if (part == names::q_proj(layer) || part == names::q_bias(layer)) rows.push_back(c.heads(layer) * c.head_dim);
    else if (part == names::gate_proj(layer) || part == names::gate_bias(layer) || part == names::up_proj(layer) ||
             part == names::up_bias(layer))
      rows.push_back(c.ffn(layer));
    else
      rows.push_back(c.kv_heads(layer) * c.head_dim);
  }
  return rows;
}

}  // namespace

Model load_gguf(const std::string& path) {
  const GgufFile file = GgufFile::open(path);
  const std::string& src = file.source();
  const std::string arch_name = file.require_string(kArchitecture);
  const Architecture* arch = find_architecture(arch_name);
  if (!arch)
    throw_error(ErrorKind::Unsupported, "{}: GGUF architecture '{}' is not supported ({})", src, arch_name,
                supported_architectures());

  Model model;
  model.source_path = path;
  model.source_format = "gguf";
  model.config = read_config(file, *arch);
  Config& c = model.config;
  const bool tied_copy = file.get_bool(kTiedOutput).value_or(false);

  std::map<std::string, std::string> stored_as;  // canonical → the file's name, for messages
  auto restore = [&](Tensor t) {
    if (arch->interleaved_rope)
      if (auto heads = rope_heads_of(t.name(), c)) t = regroup_rope_rows(t, *heads, /*to_gguf=*/false);
    if (arch->norm_unit_offset && is_norm_weight(t.name())) t = add_offset(t, -1.0f);
    model.set(std::move(t));
  };
  for (const GgufTensorInfo& info : file.tensors()) {
    if (info.name == kRopeFreqsTensor && arch->rope_freqs) {
      read_llama3_scaling(file, info, c);
      continue;
    }
    if (arch->longrope && (info.name == kRopeFactorsLong || info.name == kRopeFactorsShort)) {
      (info.name == kRopeFactorsLong ? c.rope_scaling.long_factor : c.rope_scaling.short_factor) =
          read_factors(file, info, c);
      continue;
    }
    if (info.name == kOutputTensor && tied_copy) continue;  // llama.cpp's copy of token_embd
    // A fused tensor (attn_qkv in any architecture, as llama.cpp's loader takes it; Phi-3's gate+up ffn_up) is
    // split into its parts wherever it appears.
    if (const auto fused = fused_tensor_named(*arch, c, info.name)) {
      const auto& [layer, parts] = *fused;
      const Tensor whole = file.view(info);
      const std::vector<int64_t> rows = part_rows(parts.parts, c, layer);
      int64_t total = 0;
      for (int64_t r : rows) total += r;
      if (whole.rank() < 1 || whole.dim(0) != total)
        throw_error(ErrorKind::BadInput, "{}: tensor '{}' has {} rows, its parts need {}", src, info.name,
                    whole.rank() < 1 ? 0 : whole.dim(0), total);
      int64_t row = 0;
      for (size_t i = 0; i < rows.size(); ++i) {
        stored_as[parts.parts[i]] = info.name;
        restore(slice_rows(whole, row, row + rows[i], parts.parts[i]));
        row += rows[i];
      }
      continue;
    }
    const auto canonical = canonical_tensor_name(info.name);
    if (!canonical)
      throw_error(ErrorKind::Unsupported, "{}: tensor '{}' is not part of the {} graph slmopt reads", src, info.name,
                  arch_name);
    if (auto layer = layer_of(*canonical); layer && *layer >= c.num_layers)
      throw_error(ErrorKind::BadInput, "{}: tensor '{}' belongs to layer {}, but block_count is {}", src, info.name,
                  *layer, c.num_layers);
    Tensor t = file.view(info);
    t.set_name(*canonical);
    stored_as[*canonical] = info.name;
    restore(std::move(t));
  }
  if (c.rope_scaling.type == RopeScalingType::LongRope &&
      (c.rope_scaling.long_factor.empty() || c.rope_scaling.short_factor.empty()))
    throw_error(ErrorKind::BadInput, "{}: LongRoPE scaling without the tensors '{}' and '{}'", src, kRopeFactorsLong,
                kRopeFactorsShort);

  const Tensor* embedding = model.find(names::kEmbedTokens);
  if (!embedding || embedding->rank() != 2)
    throw_error(ErrorKind::BadInput, "{}: tensor 'token_embd.weight' is missing or not 2-D", src);
  c.vocab_size = embedding->dim(0);
  c.tie_word_embeddings = !model.has(names::kLmHead);
  c.attention_bias = model.has(names::q_bias(0));
  c.attention_out_bias = model.has(names::o_bias(0));
  c.mlp_bias = model.has(names::up_bias(0));
  c.lm_head_bias = model.has(names::kLmHeadBias);

  if (!file.get_bool(kPlaceholderVocab).value_or(false)) model.vocab = gguf_tokenizer::read_vocab_metadata(file);
  if (model.vocab.kind != VocabKind::None && model.vocab.size() != c.vocab_size)
    spdlog::warn("{}: {} tokens for an embedding of {} rows", src, model.vocab.size(), c.vocab_size);
  c.validate(src);
  // A tensor llama.cpp's graph knows but the description read from the keys does not use (e.g. an ffn_gate in a
  // gpt2 file) would be silently ignored by the forward pass: refuse it, named as the file names it. This comes
  // before the check for missing tensors, since a renamed tensor is both and its new name is the news. Each tensor
  // is looked up in its own layer's list: the whole list has as many entries as the header claims layers.
  const std::vector<ExpectedTensor> globals = decoder_global_tensors(c);
  std::vector<ExpectedTensor> layer_list;
  int64_t listed_layer = -1;
  auto implied = [&](const std::string& name) {
    const std::optional<int64_t> layer = layer_of(name);
    if (layer && *layer >= c.num_layers) return false;
    if (layer && *layer != listed_layer) {  // tensors() is sorted by name, so a layer's tensors come together
      layer_list = decoder_layer_tensors(c, *layer);
      listed_layer = *layer;
    }
    const std::vector<ExpectedTensor>& candidates = layer ? layer_list : globals;
    return std::any_of(candidates.begin(), candidates.end(), [&](const ExpectedTensor& e) { return e.name == name; });
  };
  for (const auto& [name, t] : model.tensors())
    if (!implied(name))
      throw_error(ErrorKind::Unsupported, "{}: tensor '{}' is not part of the {} graph slmopt reads", src,
                  stored_as.count(name) ? stored_as.at(name) : name, arch_name);
  // Then every tensor the description implies, stopping at the first one missing.
  model.validate();
  return model;
}

}  // namespace slmopt
