// GGUF → Model (see io/gguf.h): rebuilds Config from the architecture keys, maps llama.cpp tensor names back to
// the canonical Hugging Face ones (reversed dims are already undone by the container reader), regroups Q/K rows
// of "llama" files back into the rotate_half order, and rebuilds the Vocab.
#include <algorithm>
#include <cmath>
#include <filesystem>

#include "gguf_arch.h"
#include "gguf_gpt2.h"
#include "gguf_tokenizer.h"
#include "slmopt/core/error.h"
#include "slmopt/core/log.h"  // spdlog
#include "slmopt/io/gguf.h"
#include "slmopt/io/gguf_format.h"
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
    values.assign(static_cast<size_t>(n_layers), *file.get_int(key));
  }
  for (auto x : values)
    if (x <= 0 || x > (int64_t{1} << 31))
      throw_error(ErrorKind::BadInput, "{}: key '{}' has the value {}", file.source(), key, x);
  return values;
}

// Sets the uniform value (the largest) and, when layers differ, the per-layer list.
void set_counts(const std::vector<int64_t>& values, int64_t& uniform, std::vector<int64_t>& per_layer) {
  uniform = *std::max_element(values.begin(), values.end());
  const bool same = std::all_of(values.begin(), values.end(), [&](int64_t x) { return x == values.front(); });
  per_layer = same ? std::vector<int64_t>{} : values;
}

Config read_config(const GgufFile& file, const Architecture& arch) {
  const std::string& src = file.source();
  const std::string_view a = arch.gguf_name;
  Config c;
  c.family = arch.family;
  c.architecture = std::string(arch.hf_class);
  // slmopt's own key tells Mistral from Llama in a "llama" file, and the source family of a "deci" file.
  if (auto hf = file.get_string(kHfArchitecture)) {
    const auto family = family_of_hf_class(*hf);
    const bool compatible = family && (arch.gguf_name == "deci" || (arch.family == Family::Llama
                                                                      ? *family != Family::Qwen2
                                                                      : *family == arch.family));
    if (compatible) {
      c.family = *family;
      c.architecture = *hf;
    }
  }
  c.name = file.get_string(kName).value_or(std::filesystem::path(src).stem().string());

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
  if (auto rope_dims = file.get_int(arch_key(a, "rope.dimension_count")); rope_dims && *rope_dims != c.head_dim)
    throw_error(ErrorKind::Unsupported, "{}: partial rotary embeddings ({} of {} dimensions) are not supported", src,
                *rope_dims, c.head_dim);
  c.norm_eps = file.require_float(arch_key(a, "attention.layer_norm_rms_epsilon"));
  c.rope_theta = file.get_float(arch_key(a, "rope.freq_base")).value_or(10000.0);

  const std::string scaling = file.get_string(arch_key(a, "rope.scaling.type")).value_or("none");
  double linear_factor = 1.0;
  if (scaling == "linear") {
    linear_factor = file.get_float(arch_key(a, "rope.scaling.factor")).value_or(1.0);
  } else if (scaling == "none") {
    linear_factor = file.get_float(arch_key(a, "rope.scale_linear")).value_or(1.0);  // the older key
  } else {
    throw_error(ErrorKind::Unsupported, "{}: RoPE scaling '{}' is not supported (none, linear, llama3)", src, scaling);
  }
  if (linear_factor > 0 && linear_factor != 1.0) {
    c.rope_scaling.type = RopeScalingType::Linear;
    c.rope_scaling.factor = linear_factor;
  }
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

std::optional<int64_t> layer_of(const std::string& hf_name) {
  const std::string prefix = "model.layers.";
  if (hf_name.rfind(prefix, 0) != 0) return std::nullopt;
  return std::strtoll(hf_name.c_str() + prefix.size(), nullptr, 10);
}

}  // namespace

Model load_gguf(const std::string& path) {
  const GgufFile file = GgufFile::open(path);
  const std::string& src = file.source();
  const std::string arch_name = file.require_string(kArchitecture);
  if (arch_name == kGpt2GgufArchitecture) return load_gpt2_gguf(file, path);
  const Architecture* arch = find_architecture(arch_name);
  if (!arch)
    throw_error(ErrorKind::Unsupported, "{}: GGUF architecture '{}' is not supported (llama, qwen2, deci, gpt2)", src,
                arch_name);

  Model model;
  model.source_path = path;
  model.source_format = "gguf";
  model.config = read_config(file, *arch);
  Config& c = model.config;

  for (const GgufTensorInfo& info : file.tensors()) {
    if (info.name == kRopeFreqsTensor && arch->regroup_rope_rows) {
      read_llama3_scaling(file, info, c);
      continue;
    }
    const auto hf_name = hf_tensor_name(info.name);
    if (!hf_name)
      throw_error(ErrorKind::Unsupported, "{}: tensor '{}' is not part of the {} graph slmopt reads", src, info.name,
                  arch_name);
    if (auto layer = layer_of(*hf_name); layer && *layer >= c.num_layers)
      throw_error(ErrorKind::BadInput, "{}: tensor '{}' belongs to layer {}, but block_count is {}", src, info.name,
                  *layer, c.num_layers);
    Tensor t = file.view(info);
    t.set_name(*hf_name);
    if (arch->regroup_rope_rows)
      if (auto heads = rope_heads_of(*hf_name, c)) t = regroup_rope_rows(t, *heads, /*to_gguf=*/false);
    model.set(std::move(t));
  }

  const Tensor* embedding = model.find(names::kEmbedTokens);
  if (!embedding || embedding->rank() != 2)
    throw_error(ErrorKind::BadInput, "{}: tensor 'token_embd.weight' is missing or not 2-D", src);
  c.vocab_size = embedding->dim(0);
  c.tie_word_embeddings = !model.has(names::kLmHead);
  c.attention_bias = model.has(names::q_bias(0));
  c.attention_out_bias = model.has(names::o_bias(0));
  c.mlp_bias = model.has(names::layer_prefix(0) + "mlp.up_proj.bias");

  model.vocab = gguf_tokenizer::read_vocab_metadata(file);
  if (model.vocab.kind != VocabKind::None && model.vocab.size() != c.vocab_size)
    spdlog::warn("{}: {} tokens for an embedding of {} rows", src, model.vocab.size(), c.vocab_size);
  model.validate();
  return model;
}

}  // namespace slmopt
